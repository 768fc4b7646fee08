"""Per-instance results: which core, router, link and DRAM channel did the work.

Instances are named as Accelergy names them: `core[i]` (a core and its SRAM: the `core.*`
and `sram.*` actions it performs), `router[t]` (the router of tile t: messages injected
and delivered locally at their source tile, and every hop over a link leaving it),
`link[x0,y0>x1,y1]` (messages over the link between two neighbouring tiles), `dram[0]`
(the DRAM channel) and `chip` (`chip.*`). Attribution, per presentation:
- `core.<synapse unit>`, `sram.read_word` of delivery: the destination core's
  (StepWork.unit_per_core, sram_per_core);
- `core.spike_out`: the core of the neuron that fired; `core.neuron_update_*`: the core
  of the neuron updated (active as the chip counts it: counting.updated_per_core);
- learning: `core.stdp_update` and its read-modify-write words at the core holding the
  weights (StepWork.learn_ops, learn_words), whole-matrix passes at each core by its
  weights, traces and thresholds at the cores holding the neurons (or the targets, for
  presynaptic traces replicated there);
- `router.*`: per spike and projection, its route's messages (Topology.route).
Whatever a counter does not split by instance (the BPTT actions) stays whole in
`unattributed`, so every action's instances add up to the phase's total exactly.
Busy cycles: a core's neuron phase, synaptic work (lanes or SRAM ports, the receive cost)
and learning per step, the `timestep` model's occupancy (the same at every fidelity); a
link's flits; the DRAM channel's transfers.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from snn_frontend.trace import Presentation

from .counting import StepWork, updated_per_core
from .timing import core_busy_cycles

__all__ = ["InstanceCounter", "add_instances", "link_name"]


def link_name(link) -> str:
    x0, y0, x1, y1 = link
    return f"link[{x0},{y0}>{x1},{y1}]"


class InstancePlan:
    """What every replay on one chip shares: the links, and per projection the links one
    spike of each presynaptic neuron traverses and its source tile (Chip.instance_plan)."""

    def __init__(self, chip):
        counter, topo = chip.counter, chip.topology
        self.C, self.n_tiles = counter.m.n_cores, topo.n_tiles
        self.links: list = []
        index: dict = {}
        per_route: dict[int, np.ndarray] = {}  # a Route (shared by its sources) -> link ids

        def link_ids(route) -> np.ndarray:
            ids = per_route.get(id(route))
            if ids is None:
                found = []
                for _, tree, _ in route.messages:
                    for link, _ in tree:
                        if link not in index:
                            index[link] = len(self.links)
                            self.links.append(link)
                        found.append(index[link])
                ids = per_route[id(route)] = np.array(found, np.int64)
            return ids

        per_source = {}
        for pr in counter.spec.projections:
            src = counter.sources[pr.name]
            ids = [link_ids(route) for route in src.routes]
            rows = np.repeat(np.arange(len(ids)), [len(x) for x in ids])
            cols = np.concatenate(ids) if ids else np.zeros(0, np.int64)
            tile = (np.full(len(src.routes), topo.tile_at(*topo.port))
                    if src.from_port else topo.tile_of(src.core))
            per_source[pr.name] = (rows, cols, np.asarray(tile, np.int64))
        L = len(self.links)
        # per projection: (n_src, n_links) link traversals of one spike of each source; its
        # messages and local deliveries at its source tile
        self.traverse = {name: sparse.csr_matrix((np.ones(len(r), np.int64), (r, c)),
                                                 shape=(len(t), L))
                         for name, (r, c, t) in per_source.items()}
        self.tile = {name: t for name, (_, _, t) in per_source.items()}
        self.packets = {pr.name: counter.sources[pr.name].fields["packets"]
                        for pr in counter.spec.projections}
        self.local = {pr.name: counter.sources[pr.name].fields["local"]
                      for pr in counter.spec.projections}
        self.link_tile = np.array([topo.tile_at(x0, y0) for x0, y0, _, _ in self.links], np.int64)
        self.link_chip = np.array([topo.crosses_chips(lk) for lk in self.links], bool)
        self.link_ew = np.array([y0 == y1 for _, y0, _, y1 in self.links], bool) & ~self.link_chip
        self.link_ns = ~self.link_ew & ~self.link_chip
        # each link's busy cycles per message (a chip-to-chip link is narrower)
        self.link_flits = np.where(self.link_chip, chip.rates.flits_chip, chip.rates.flits).astype(np.int64)


class InstanceCounter:
    """Accumulates per-instance counts of one phase on one chip."""

    def __init__(self, chip):
        self.chip = chip
        self.plan = chip.instance_plan
        self.C, self.n_tiles = self.plan.C, self.plan.n_tiles
        self.core: dict[str, np.ndarray] = {}
        # spikes per presynaptic neuron and projection: the network's counts follow
        # (linearly) at `totals`
        self.fired = {name: np.zeros(t.shape[0], np.int64)
                      for name, t in self.plan.traverse.items()}
        self.core_busy = np.zeros(self.C, np.int64)
        self.dram_busy = 0

    # ---- one presentation ---------------------------------------------------------
    def add(self, p: Presentation, work: StepWork, *, learn: bool, learning: dict,
            state_reset: bool) -> None:
        chip, counter = self.chip, self.chip.counter
        m, C, T = counter.m, self.C, p.n_steps
        spikes, steps = work.fired, work.fired_steps
        for unit, per_core in (work.unit_per_core or {}).items():
            self._core(f"core.{unit}", per_core)
        self._core("sram.read_word", work.sram_per_core)
        for q in counter.chip_pops:
            core = m.core[q.name]
            _, idx = spikes[q.name]
            self._core("core.spike_out", np.bincount(core[idx], minlength=C))
            per_step = work.updated[q.name]
            if np.all((per_step == 0) | (per_step == q.size)):  # whole steps
                on = int((per_step == q.size).sum()) * m.k[q.name]
            else:
                on = updated_per_core(q, counter.incoming[q.name], core, C, p, spikes, steps,
                                      work.reached.get(q.name))
            self._core("core.neuron_update_active", on)
            self._core("core.neuron_update_idle", T * m.k[q.name] - on)
        if learn and counter.backprop is None:
            self._learning(p, work, spikes, learning, state_reset)
        self._network(spikes)
        self.core_busy += core_busy_cycles(work, chip.rates)
        self.dram_busy += int(chip.rates.dram_step_cycles(work).sum())

    def add_cores(self, counts: dict[str, np.ndarray]) -> None:
        """Add per-core counts ("kind.action" -> (C,)) counted elsewhere (chip/power.py)."""
        for action, per_core in counts.items():
            self._core(action, per_core)

    def _core(self, action: str, per_core) -> None:
        acc = self.core.get(action)
        if acc is None:
            acc = self.core[action] = np.zeros(self.C, np.int64)
        acc += np.asarray(per_core, np.int64)

    def _learning(self, p, work, spikes, learning, state_reset) -> None:
        counter = self.chip.counter
        m, spec, T = counter.m, counter.spec, p.n_steps
        self._core("core.stdp_update", work.learn_ops_per_core())
        rmw = work.learn_words_per_core() // 2
        passes = int(p.normalised) + p.decays
        post = set()
        for pr in spec.projections:
            if pr.plastic != "stdp":
                continue
            n_src = spec.population(pr.src).size
            k = m.k[pr.dst]
            held = (k > 0).astype(np.int64)
            self._core("core.trace_update", held * (T * n_src + int(spikes[pr.src][0].sum())))
            post.add(pr.dst)
            if passes:
                words = passes * counter.tables[pr.name].block_sram
                rmw = rmw + words
                if p.normalised:
                    self._core("core.normalise_op", n_src * k)
                if p.decays:
                    self._core("core.decay_op", p.decays * n_src * k)
        self._core("sram.read_word", rmw)
        self._core("sram.write_word", rmw)
        for name in post:
            q = spec.population(name)
            fired = np.bincount(m.core[name][spikes[name][1]], minlength=self.C)
            self._core("core.trace_update", len(q.trace_vars) * (T * m.k[name] + fired))
        for q in counter.chip_pops:
            if q.kind == "adaptive_lif":
                fired = np.bincount(m.core[q.name][spikes[q.name][1]], minlength=self.C)
                self._core("core.threshold_update", T * m.k[q.name] + fired
                           + (m.k[q.name] if state_reset else 0))

    def _network(self, spikes) -> None:
        for pr in self.chip.counter.spec.projections:
            _, idx = spikes[pr.src]
            if len(idx):
                acc = self.fired[pr.name]
                acc += np.bincount(idx, minlength=len(acc))

    def _per_link_and_router(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Messages over each link, and each router's actions, from the spikes so far."""
        plan, T = self.plan, self.n_tiles
        per_link = np.zeros(len(plan.links), np.int64)
        inject = np.zeros(T, np.int64)
        local = np.zeros(T, np.int64)
        for name, fired in self.fired.items():
            per_link += plan.traverse[name].T @ fired
            inject += np.bincount(plan.tile[name], weights=fired * plan.packets[name],
                                  minlength=T).astype(np.int64)
            local += np.bincount(plan.tile[name], weights=fired * plan.local[name],
                                 minlength=T).astype(np.int64)
        router = {"router.inject": inject, "router.local_delivery": local}
        for action, mask in (("router.hop_ew", plan.link_ew), ("router.hop_ns", plan.link_ns),
                             ("router.hop_chip", plan.link_chip)):
            router[action] = np.bincount(plan.link_tile[mask], weights=per_link[mask],
                                         minlength=T).astype(np.int64)
        return per_link, router

    # ---- totals ---------------------------------------------------------------------
    def totals(self, counts: dict[str, int]) -> dict:
        """Plain data (stats.json): per-instance counts and busy cycles; `counts` (the
        phase's "kind.action" totals) give the DRAM channel's, the chip's and the
        unattributed remainder."""
        topo = self.chip.topology
        per_link, router = self._per_link_and_router()
        per_core = {a: v.tolist() for a, v in sorted(self.core.items())}
        per_router = {a: v.tolist() for a, v in sorted(router.items())}
        unattributed = {}
        for key, n in counts.items():
            kind = key.split(".", 1)[0]
            if kind in ("core", "sram"):
                rest = n - int(self.core[key].sum()) if key in self.core else n
            elif kind == "router":
                rest = n - int(router[key].sum()) if key in router else n
            else:
                rest = 0
            if rest:
                unattributed[key] = rest
        return {"cores": self.C, "tiles": self.n_tiles, "mesh": [topo.width, topo.height],
                "tile_xy": [list(topo.xy(t)) for t in range(self.n_tiles)],
                "cores_per_tile": topo.cores_per_tile,
                "core": per_core, "core_busy_cycles": self.core_busy.tolist(),
                "router": per_router,
                "links": [link_name(lk) for lk in self.plan.links],
                "link_messages": per_link.tolist(),
                "fired": {name: v.tolist() for name, v in self.fired.items()},
                "link_flits": self.plan.link_flits.tolist(),
                "dram": {k: n for k, n in counts.items() if k.startswith("dram.")},
                "dram_busy_cycles": self.dram_busy,
                "chip": {k: n for k, n in counts.items() if k.startswith("chip.")},
                "unattributed": unattributed}

    def load(self, totals: dict) -> None:
        """Continue from `totals` (a checkpoint)."""
        self.core = {a: np.asarray(v, np.int64) for a, v in totals["core"].items()}
        self.fired = {a: np.asarray(v, np.int64) for a, v in totals["fired"].items()}
        self.core_busy = np.asarray(totals["core_busy_cycles"], np.int64)
        self.dram_busy = int(totals["dram_busy_cycles"])


def add_instances(a: dict | None, b: dict | None) -> dict | None:
    """The per-instance totals of two consecutive replays of one phase on one chip (the
    count totals in `dram`, `chip`, `unattributed` add too)."""
    if a is None or b is None:
        return a if b is None else b

    def add_lists(x: dict, y: dict) -> dict:
        keys = sorted(set(x) | set(y))
        n = len(next(iter(x.values() or y.values()), []))
        return {k: (np.asarray(x.get(k, [0] * n)) + np.asarray(y.get(k, [0] * n))).tolist()
                for k in keys}

    def add_counts(x: dict, y: dict) -> dict:
        return {k: x.get(k, 0) + y.get(k, 0) for k in sorted(set(x) | set(y))}

    out = dict(a)
    out["core"] = add_lists(a["core"], b["core"])
    out["router"] = add_lists(a["router"], b["router"])
    out["fired"] = add_lists(a["fired"], b["fired"])
    for key in ("core_busy_cycles", "link_messages"):
        out[key] = (np.asarray(a[key]) + np.asarray(b[key])).tolist()
    out["dram_busy_cycles"] = a["dram_busy_cycles"] + b["dram_busy_cycles"]
    for key in ("dram", "chip", "unattributed"):
        out[key] = add_counts(a[key], b[key])
    return out
