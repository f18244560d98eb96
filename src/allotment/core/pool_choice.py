"""Where a job goes within and across its pools: placement per option (devices, or nodes) and the best-fit order of
a best-fit job's pools. Part of admission.SchedulerState (split out to keep each file readable); the rules are in the
contract at the top of admission.py (rules 6 to 8).
"""

from __future__ import annotations

from typing import Final

from allotment.core.explain import DEVICE, Blocker, NodeNeed
from allotment.core.queues import PLACE_DEVICES, PLACE_NODES, Group, Option
from allotment.core.reclaiming import Reclaiming
from allotment.core.usage import ROOT

_new_tuple: Final = tuple.__new__  # builds a NamedTuple (Blocker) in C, without its Python-level __new__


class PoolChoice(Reclaiming):
    def _place(self, opt: Option) -> tuple[tuple, tuple[str, ...] | None] | None:
        """Place the option's GPUs (and node share) in its pool: (device shares, nodes or None when the Admit names
        the devices' node), or None when it does not fit. Takes them."""
        dp = self._devices[opt.pool]
        if opt.mode == PLACE_DEVICES:
            shares = dp.place(opt.gpu)
            return None if shares is None else (shares, None)
        if opt.mode == PLACE_NODES:
            return dp.place_job(opt.gpu, opt.cpu, opt.mem, opt.count)
        return (), ()

    def _chooses(self, opt: Option) -> bool:
        """Would the option's placement fit the pool now? Changes nothing."""
        dp = self._devices[opt.pool]
        if opt.mode == PLACE_DEVICES:
            return dp.choose(opt.gpu) is not None
        if opt.mode == PLACE_NODES:
            return dp.choose_job(opt.gpu, opt.cpu, opt.mem, opt.count) is not None
        return True

    def _best_first(self, q: int, group: Group) -> list[Option]:
        """A best-fit group's options, the best-scored placement first (see the contract: Choice among pools);
        options whose usage or placement does not fit now keep their order after them."""
        tree, devices = self._tree, self._devices
        scored: list[tuple[float, int, Option]] = []
        rest: list[Option] = []
        for i, opt in enumerate(group.options):
            if tree.first_block(q, opt.req) is not None:
                rest.append(opt)
                continue
            dp = devices[opt.pool]
            if opt.mode == PLACE_NODES:
                chosen = dp.choose_job(opt.gpu, opt.cpu, opt.mem, opt.count)
                score = None if chosen is None else chosen[0]
            elif opt.mode == PLACE_DEVICES:
                shares = dp.choose(opt.gpu)
                score = None if shares is None else dp.score(dp.node[shares[0][0]], opt.gpu, 0, 0, shares)
            else:
                score = 0.0
            if score is None:
                rest.append(opt)
            else:
                scored.append((score, i, opt))
        scored.sort(key=lambda t: (t[0], t[1]))
        return [o for _, _, o in scored] + rest

    def _device_blocker(self, opt: Option) -> Blocker:
        """The option's usage fits but no device (set) or node of its pool takes it."""
        dp = self._devices[opt.pool]
        if opt.mode == PLACE_NODES:
            key = self._pool_keys[opt.pool]["gpu" if opt.gpu or not opt.cpu else "cpu"]
            return _new_tuple(Blocker, (DEVICE, ROOT, key, opt.gpu, opt.gpu,
                                        NodeNeed(dp, opt.gpu, opt.cpu, opt.mem, opt.count)))
        return _new_tuple(Blocker, (DEVICE, ROOT, self._pool_keys[opt.pool]["gpu"], opt.gpu, opt.gpu, dp))

    def _ever(self, group: Group) -> list[bool]:
        """Per option: could the group's jobs run on an idle cluster? Cached (it depends on configuration only)."""
        ever = group.ever
        if ever is None:
            tree, q, devices = self._tree, group.quota, self._devices
            ever = group.ever = []
            for o in group.options:
                dp = devices[o.pool]
                ever.append(tree.fits_when_idle(q, o.req) and (
                    dp.could_ever_fit_job(o.gpu, o.cpu, o.mem, o.count) if o.mode == PLACE_NODES
                    else dp.could_ever_fit(o.gpu)))
        return ever
