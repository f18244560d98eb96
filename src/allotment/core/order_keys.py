"""Order keys of queued candidates, packed into integers: the order the cycle examines jobs in (admission.py,
rule 2), and the integer heap entries that hold them."""

from __future__ import annotations

from typing import Final

# Order keys are packed into one integer, fields from most to least significant (widths in bits):
#   borrowing class (1) | not aged (1) | pool's profile rank (16) | profile's policy rank (16) |
#   weighted dominant share, fixed point 2**-32 (52) | 2**31 - priority (33) | submission seq (64)
# Same order as the tuple of those fields, but one C-level comparison instead of seven in every heap operation.
_SEQ_BITS: Final = 64
_PRIO_BITS: Final = 33
_SHARE_BITS: Final = 52
_RANK_BITS: Final = 16
_AGED_SHIFT: Final = _SEQ_BITS + _PRIO_BITS + _SHARE_BITS + 2 * _RANK_BITS
SHARE_MAX: Final = (1 << _SHARE_BITS) - 1
_RANK_MAX: Final = (1 << _RANK_BITS) - 1
SHARE_SHIFT: Final = _SEQ_BITS + _PRIO_BITS
NOT_AGED: Final = 1 << _AGED_SHIFT
CLASS_SHIFT: Final = _AGED_SHIFT + 1  # key >> CLASS_SHIFT is key_class(key), for the hot paths that inline it
BORROWS: Final = 1 << CLASS_SHIFT
PRIO_MAX: Final = (1 << _PRIO_BITS) - 1  # job_bits' fields, for the copy inlined in StateBase.add_job
SEQ_SHIFT: Final = _SEQ_BITS
SEQ_MASK: Final = (1 << _SEQ_BITS) - 1


def order_key(cls: int, aged: bool, pool_rank: int, policy_rank: int, share: float, priority: int, seq: int) -> int:
    shareq = SHARE_MAX if share >= 2.0**20 else int(share * 4294967296.0)  # inf (weight 0) sorts last
    prio = min(max((1 << 31) - priority, 0), (1 << _PRIO_BITS) - 1)
    key = (cls << 1) | (0 if aged else 1)
    key = (key << _RANK_BITS) | min(pool_rank, _RANK_MAX)
    key = (key << _RANK_BITS) | min(policy_rank, _RANK_MAX)
    key = (key << _SHARE_BITS) | shareq
    key = (key << _PRIO_BITS) | prio
    return (key << _SEQ_BITS) | (seq & ((1 << _SEQ_BITS) - 1))


def job_bits(priority: int, seq: int) -> int:
    """The (priority, seq) fields of order_key(), computed once per job."""
    prio = min(max((1 << 31) - priority, 0), (1 << _PRIO_BITS) - 1)
    return (prio << _SEQ_BITS) | (seq & ((1 << _SEQ_BITS) - 1))


def rank_bits(pool_rank: int, policy_rank: int) -> int:
    """The rank fields of order_key(), computed once per group."""
    return ((min(pool_rank, _RANK_MAX) << _RANK_BITS) | min(policy_rank, _RANK_MAX)) << (_SHARE_BITS + SHARE_SHIFT)


# Heap entries are integers, compared in one step: the global heap holds key << 96 | token << 32 | quota (the order
# of the tuple (key, token, quota)); a quota's heap holds head.gkey << 64 | token (see QueuedRec.gkey).
QUOTA_MASK: Final = (1 << 32) - 1
GLOBAL_SHIFT: Final = 96
# The key's flags and share field where a global heap entry holds them (StateBase._push_quota builds entries from
# pre-shifted parts: one shift of a 200-bit integer costs about 400 instructions).
NOT_AGED_G: Final = NOT_AGED << GLOBAL_SHIFT
BORROWS_G: Final = BORROWS << GLOBAL_SHIFT
SHARE_SHIFT_G: Final = SHARE_SHIFT + GLOBAL_SHIFT
