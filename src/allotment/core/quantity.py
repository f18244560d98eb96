"""Resource quantities: one exact integer type with saturating arithmetic and an explicit unlimited value.

Units (the integer stored in ``Quantity.raw``):

========  ==================  ===========================================
resource  raw unit            why
========  ==================  ===========================================
gpu       milli-GPU           0.1-GPU fractions stay exact (0.5 GPU = 500)
cpu       millicore           Kubernetes convention ("500m" = 0.5 core)
memory    byte                sizes like 16Gi are whole bytes already
========  ==================  ===========================================

A bare number means GPUs, cores or bytes respectively; memory also takes the Kubernetes suffixes
(Ki Mi Gi Ti Pi Ei binary, k M G T P E decimal; a trailing "B" is tolerated) and cpu takes "m".

UNLIMITED is a real value, not None: comparisons work (every finite quantity is below it), sums with it stay
unlimited, and subtraction never goes below zero. The scheduler's hot path works on the ``raw`` integers directly;
``UNLIMITED_RAW`` is large enough that adding any realistic usage to it never matters.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

RESOURCES: tuple[str, ...] = ("gpu", "cpu", "memory")

# Raw units per "plain number" of each resource.
UNIT_SCALE: dict[str, int] = {"gpu": 1000, "cpu": 1000, "memory": 1}

# 2**62 bytes is 4 EiB and 2**62 milli-GPU is 4.6e15 GPUs: nothing real reaches it, and Python ints never overflow.
UNLIMITED_RAW: int = 1 << 62

_MEMORY_SUFFIXES: dict[str, int] = {
    "": 1,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_BINARY_FORMAT: tuple[tuple[str, int], ...] = (
    ("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10),
)
_NUMBER = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<suffix>[A-Za-z]*)\s*$")
_UNLIMITED_WORDS = frozenset({"unlimited", "inf", "infinity", "∞"})


class Quantity:
    """A non-negative amount of one resource, exact, in raw units (see module docstring).

    Arithmetic saturates: ``a - b`` is never negative, anything plus UNLIMITED is UNLIMITED, UNLIMITED minus a finite
    amount is UNLIMITED. ``UNLIMITED - UNLIMITED`` has no meaningful answer and raises ValueError.
    """

    __slots__ = ("raw",)
    raw: int

    UNLIMITED: Quantity
    ZERO: Quantity

    def __init__(self, raw: int) -> None:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError(f"Quantity takes an integer number of raw units, got {raw!r}")
        if raw < 0:
            raise ValueError(f"a quantity cannot be negative (got {raw} raw units)")
        object.__setattr__(self, "raw", min(raw, UNLIMITED_RAW))

    def __setattr__(self, name: str, value: object) -> None:  # immutable: quantities are shared freely
        raise AttributeError("Quantity is immutable")

    # -- constructors -------------------------------------------------------------------------------------------
    @classmethod
    def of(cls, amount: float | str | Decimal, resource: str) -> Quantity:
        """Quantity from a human amount: ``Quantity.of(0.5, "gpu")``, ``Quantity.of("16Gi", "memory")``."""
        return parse_quantity(amount, resource)

    @classmethod
    def parse(cls, text: str | float, resource: str) -> Quantity:
        return parse_quantity(text, resource)

    # -- properties ---------------------------------------------------------------------------------------------
    @property
    def is_unlimited(self) -> bool:
        return self.raw >= UNLIMITED_RAW

    def format(self, resource: str) -> str:
        return format_quantity(self, resource)

    # -- arithmetic (saturating) --------------------------------------------------------------------------------
    def __add__(self, other: Quantity) -> Quantity:
        if not isinstance(other, Quantity):
            return NotImplemented
        return Quantity(min(self.raw + other.raw, UNLIMITED_RAW))

    def __sub__(self, other: Quantity) -> Quantity:
        if not isinstance(other, Quantity):
            return NotImplemented
        if other.is_unlimited:
            if self.is_unlimited:
                raise ValueError("unlimited minus unlimited is undefined")
            return ZERO
        if self.is_unlimited:
            return self
        return Quantity(max(self.raw - other.raw, 0))

    def __mul__(self, factor: int) -> Quantity:
        if isinstance(factor, bool) or not isinstance(factor, int):
            return NotImplemented
        if factor < 0:
            raise ValueError("a quantity cannot be multiplied by a negative number")
        if factor == 0:
            return ZERO
        if self.is_unlimited:
            return self
        return Quantity(min(self.raw * factor, UNLIMITED_RAW))

    __rmul__ = __mul__

    # -- comparison ---------------------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash(("Quantity", self.raw))

    def __lt__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.raw < other.raw

    def __le__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.raw <= other.raw

    def __gt__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.raw > other.raw

    def __ge__(self, other: Quantity) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.raw >= other.raw

    def __bool__(self) -> bool:
        return self.raw != 0

    def __repr__(self) -> str:
        return "Quantity.UNLIMITED" if self.is_unlimited else f"Quantity({self.raw})"


Quantity.UNLIMITED = Quantity(UNLIMITED_RAW)
Quantity.ZERO = Quantity(0)
UNLIMITED = Quantity.UNLIMITED
ZERO = Quantity.ZERO


def _check_resource(resource: str) -> None:
    if resource not in UNIT_SCALE:
        raise ValueError(f"unknown resource {resource!r}: expected one of {', '.join(RESOURCES)}")


def parse_quantity(text: str | float | Decimal | Quantity, resource: str) -> Quantity:
    """Parse "4", "0.5", "16Gi", "512Mi", "500m" (cpu) or "unlimited" into a Quantity of ``resource``.

    Raises ValueError naming the problem: unknown resource, empty text, negative value, unknown suffix, or an amount
    finer than the raw unit (0.0001 gpu, half a byte).
    """
    _check_resource(resource)
    if isinstance(text, Quantity):
        return text
    # A wrong type (JSON true, a list) raises ValueError, not TypeError: callers report ValueError as the field's error.
    if isinstance(text, bool):
        raise ValueError(f"{resource} quantity must be a number or text, got {text!r}")  # noqa: TRY004 - see above
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{resource} quantity cannot be negative: {text}")
        return Quantity(text * UNIT_SCALE[resource])
    if isinstance(text, float):
        if not math.isfinite(text):
            if text == float("inf"):
                return UNLIMITED
            raise ValueError(f"{resource} quantity must be a number, got {text!r}")
        text = repr(text)
    if isinstance(text, Decimal):
        text = str(text)
    if not isinstance(text, str):
        got = type(text).__name__
        raise ValueError(f"{resource} quantity must be a number or text, got {got}")  # noqa: TRY004 - see above
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"empty {resource} quantity")
    if stripped.lower() in _UNLIMITED_WORDS:
        return UNLIMITED
    if stripped.startswith("-"):
        raise ValueError(f"{resource} quantity cannot be negative: {text!r}")
    match = _NUMBER.match(stripped)
    if match is None:
        raise ValueError(f"cannot read {text!r} as a {resource} quantity (examples: 4, 0.5, 16Gi, unlimited)")
    try:
        number = Decimal(match.group("num"))
    except InvalidOperation:  # pragma: no cover - the regex already guarantees a decimal
        raise ValueError(f"cannot read {text!r} as a number") from None
    suffix = match.group("suffix")
    if resource == "memory":
        if suffix.endswith("B") and suffix[:-1] in _MEMORY_SUFFIXES:
            suffix = suffix[:-1]  # tolerate "GiB", "MB"
        if suffix not in _MEMORY_SUFFIXES:
            raise ValueError(
                f"unknown memory unit {suffix!r} in {text!r} (use Ki, Mi, Gi, Ti, k, M, G, T or plain bytes)"
            )
        raw = number * _MEMORY_SUFFIXES[suffix]
        unit_name = "byte"
    elif resource == "cpu" and suffix == "m":
        raw = number
        unit_name = "millicore"
    elif suffix:
        raise ValueError(f"unexpected unit {suffix!r} in {resource} quantity {text!r}")
    else:
        raw = number * UNIT_SCALE[resource]
        unit_name = {"gpu": "0.001 GPU", "cpu": "millicore"}[resource]
    if raw != raw.to_integral_value():
        raise ValueError(f"{resource} quantity {text!r} is finer than one {unit_name}")
    return Quantity(int(raw))


def format_quantity(quantity: Quantity, resource: str) -> str:
    """Text form that parse_quantity reads back: "4", "0.5", "16Gi", "1536Mi", "unlimited"."""
    _check_resource(resource)
    return format_raw(quantity.raw, resource)


@lru_cache(maxsize=8192)  # the scheduler's sentences repeat the same few numbers (capacities, limits, sizes)
def format_raw(raw: int, resource: str) -> str:
    """format_quantity for a raw integer (the scheduler's messages are built from its integer state: no objects)."""
    if raw >= UNLIMITED_RAW:
        return "unlimited"
    if raw <= 0:
        return "0"
    if resource == "memory":
        for suffix, size in _BINARY_FORMAT:
            if raw >= size and raw % size == 0:
                return f"{raw // size}{suffix}"
        return str(raw)
    whole, frac = divmod(raw, 1000)  # gpu and cpu are both milli-units
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:03d}".rstrip("0")
