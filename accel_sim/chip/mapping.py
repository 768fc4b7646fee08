"""Map a network spec onto cores: neurons to cores, fan-in weights to each core's SRAM.

Placement puts every on-chip population's neurons on cores:
- `balanced`: each population spread evenly over all cores (neuron j of a population of
  n on core `j * C // n`, so same-index neurons of equal populations share a core);
- `contiguous`: fill core 0, then core 1, ... with the populations in spec order;
- `explicit`: a core index per neuron, given per population (API or a file).
A map (a population with a shape) goes in its flattened, channel-major order (whole
channels per core: `map_split: channel`), or with `map_split: tile` position by position
(each core a spatial patch of every channel, so a conv spike's receptive field reaches
fewer cores).

A core stores the fan-in weights of the neurons it holds, projection by projection in
spec order, row by row: a row is one presynaptic neuron's weights onto this core's
targets, `ceil(targets * weight_bits / word_bits)` words. With `sram.layout:
column_major` a plastic dense projection is stored column by column instead (a column =
one target neuron's fan-in). Words past the SRAM's capacity spill to DRAM, and every
access to them is a DRAM access. Lateral projections (one scalar strength) store nothing.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping as MappingT

import numpy as np

from snn_frontend.spec import NetworkSpec, Projection, index_bits

from ..errors import MappingError

__all__ = ["Mapping", "MappingError", "words_for", "place", "load_placement"]


def words_for(n_weights, weight_bits: int, word_bits: int):
    """Words that hold n weights packed side by side (n may be an array)."""
    return -(-np.asarray(n_weights, dtype=np.int64) * weight_bits // word_bits)


@dataclass
class Block:
    """A projection's weights on one core: per row, words in SRAM / DRAM.

    Rows are presynaptic neurons (row-major), the core's target neurons in slot order
    (`column_major`), or a shared conv kernel's slices, one per input channel (`row_of`:
    the row each presynaptic neuron reads)."""

    row_words: np.ndarray
    row_sram: np.ndarray
    row_dram: np.ndarray
    column_major: bool = False
    row_of: np.ndarray | None = None
    row_start: np.ndarray | None = None  # each row's first word's SRAM address on the core


def load_placement(path: str | Path) -> dict[str, np.ndarray]:
    """Read an explicit placement: an .npz (or .json) mapping population -> core per neuron."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            import json

            raw = json.loads(path.read_text(encoding="utf-8"))
            return {k: np.asarray(v, np.int64) for k, v in raw.items()}
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k], np.int64) for k in z.files}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise MappingError(f"hardware.placement_file: cannot read {path}: {exc}") from None


def place(spec: NetworkSpec, hw, explicit: MappingT[str, np.ndarray] | None = None
          ) -> dict[str, np.ndarray]:
    """Core index of every neuron of every on-chip population."""
    C, per = hw.n_cores, hw.cores.neurons_per_core
    pops = spec.chip_populations
    need = sum(p.size for p in pops)
    mode = "explicit" if explicit is not None else hw.mapping
    if mode != "explicit" and need > C * per:
        sizes = " + ".join(f"{p.size} {p.name}" for p in pops)
        where = "chip" if hw.n_chips == 1 else f"system of {hw.n_chips} chips"
        raise MappingError(f"the network has {need} neurons ({sizes}) but the {where} holds "
                           f"{C} cores x {per} = {C * per}; add cores, neurons_per_core or "
                           "chips (hardware.system.chips)")
    tile = hw.map_split == "tile"
    if mode == "balanced":
        cores = {p.name: (_split_order(p, tile) * C) // p.size for p in pops}
    elif mode == "contiguous":
        slots = np.arange(need, dtype=np.int64) // per
        cores, start = {}, 0
        for p in pops:
            cores[p.name] = slots[start:start + p.size][_split_order(p, tile)]
            start += p.size
    elif mode == "explicit":
        if explicit is None:
            raise MappingError("hardware.mapping is explicit: give a placement (the API's "
                               "placement= or hardware.placement_file)")
        names = [p.name for p in pops]
        extra = [k for k in explicit if k not in names]
        if extra:  # a misspelt name first: it is why a population seems to be missing
            hint = difflib.get_close_matches(extra[0], names, n=1, cutoff=0.5)
            raise MappingError(f"explicit placement names no on-chip population: "
                               f"{', '.join(map(repr, extra))}"
                               + (f"; did you mean {hint[0]!r}?" if hint else "")
                               + f" (the spec's on-chip populations: {', '.join(names)})")
        cores = {}
        for p in pops:
            if p.name not in explicit:
                raise MappingError(f"explicit placement: no cores for population {p.name!r}")
            a = np.asarray(explicit[p.name]).astype(np.int64).ravel()
            if len(a) != p.size:
                raise MappingError(f"explicit placement of {p.name!r}: {len(a)} cores given "
                                   f"for {p.size} neurons")
            if len(a) and (a.min() < 0 or a.max() >= C):
                raise MappingError(f"explicit placement of {p.name!r}: core indices must be "
                                   f"0..{C - 1}")
            cores[p.name] = a
    else:
        raise MappingError(f"unknown mapping {mode!r}")
    load = np.zeros(C, np.int64)
    for a in cores.values():
        load += np.bincount(a, minlength=C)
    if load.max(initial=0) > per:
        c = int(load.argmax())
        raise MappingError(f"core {c} holds {int(load[c])} neurons; the chip allows "
                           f"{per} per core (cores.neurons_per_core)")
    return cores


def _split_order(p, tile: bool) -> np.ndarray:
    """Each neuron's rank in the order cores are filled: its index, or for a map split by
    spatial tile, its position first (the channels of one position side by side)."""
    idx = np.arange(p.size, dtype=np.int64)
    if not tile or p.shape is None:
        return idx
    per_map = p.size // p.shape[0]
    return (idx % per_map) * p.shape[0] + idx // per_map


class Mapping:
    """Placement and SRAM/DRAM allocation of one spec on one chip."""

    def __init__(self, spec: NetworkSpec, hw, placement: MappingT[str, np.ndarray] | None = None):
        self.spec, self.hw = spec, hw
        self.n_cores = C = hw.n_cores
        word = hw.sram.word_bits
        for pr in spec.projections:
            if pr.stores_weights and word < pr.weight_bits:
                raise MappingError(f"hardware.sram.word_bits = {word} is narrower than one "
                                   f"{pr.weight_bits}-bit weight of {pr.name}")
        self.core = place(spec, hw, placement)  # population -> core per neuron
        self.k = {name: np.bincount(a, minlength=C) for name, a in self.core.items()}
        self.slot = {name: _slots(a, C) for name, a in self.core.items()}
        self.capacity_words = int(hw.sram.size_kib * 1024 * 8 // word)
        self.targets = {pr.name: self._targets(pr) for pr in spec.projections}
        self._allocate(word)

    # ------------------------------------------------------------- targets
    def _targets(self, pr: Projection) -> np.ndarray:
        """(C, n_src): targets of each presynaptic neuron on each core."""
        C = self.n_cores
        n_src = self.spec.population(pr.src).size
        k = self.k[pr.dst]
        dcore = self.core[pr.dst]
        if pr.connectivity == "dense":
            return np.repeat(k[:, None], n_src, axis=1)
        own = np.zeros((C, n_src), np.int64)
        if pr.connectivity in ("one_to_one", "all_but_self", "lateral"):
            own[dcore, np.arange(n_src)] = 1
            return own if pr.connectivity == "one_to_one" else k[:, None] - own
        pre, post = pr.connections  # sparse pairs, or a conv, pool or flatten's synapses
        np.add.at(own, (dcore[post], pre), 1)
        return own

    def dest_cores(self, proj: str, src: int) -> np.ndarray:
        """Cores holding targets of presynaptic neuron `src` of projection `proj`."""
        return np.flatnonzero(self.targets[proj][:, src])

    # ------------------------------------------------------------ allocation
    def _allocate(self, word: int) -> None:
        C, cap, spec = self.n_cores, self.capacity_words, self.spec
        column_major = self.hw.sram.layout == "column_major"
        shared = self.hw.sram.conv_weights == "shared"
        self.blocks: dict[str, list[Block | None]] = {}
        used = np.zeros(C, np.int64)
        for pr in spec.projections:
            blocks: list[Block | None] = []
            for c in range(C):
                if not pr.stores_weights or self.k[pr.dst][c] == 0:
                    blocks.append(None)
                    continue
                col = column_major and pr.plastic != "none" and pr.connectivity == "dense"
                row_of = None
                if col:
                    n_src = spec.population(pr.src).size
                    rows = words_for(np.full(int(self.k[pr.dst][c]), n_src), pr.weight_bits, word)
                elif pr.connectivity in ("conv2d", "conv1d") and shared:
                    rows, row_of = self._kernel_slices(pr, c, word)
                else:
                    rows = words_for(self.targets[pr.name][c], self._synapse_bits(pr), word)
                start = used[c] + np.concatenate([[0], np.cumsum(rows)[:-1]])
                sram = np.clip(cap - start, 0, rows)
                used[c] += int(rows.sum())
                blocks.append(Block(rows, sram, rows - sram, col, row_of, start))
            self.blocks[pr.name] = blocks
        self.words_used = used
        self.words_spilled = np.array([
            sum(int(b.row_dram.sum()) for bl in self.blocks.values() for b in [bl[c]] if b)
            for c in range(C)], np.int64)

    def _synapse_bits(self, pr: Projection) -> int:
        """Bits of one stored synapse: the weight, and where a row lists its targets (sparse
        and expanded conv storage) the target's index."""
        listed = pr.connectivity in ("sparse", "conv2d", "conv1d")
        return pr.weight_bits + (index_bits(self.spec.population(pr.dst).size) if listed else 0)

    def _kernel_slices(self, pr: Projection, c: int, word: int):
        """Shared conv storage on core c: for each input channel, the kernel weights of the
        output channels c holds (in that channel's group); every presynaptic neuron reads
        its channel's slice. Returns (words per slice, slice of each presynaptic neuron)."""
        src, dst = self.spec.population(pr.src), self.spec.population(pr.dst)
        c_in, c_out = src.shape[0], dst.shape[0]
        per_map = dst.size // c_out
        held = np.unique(np.flatnonzero(self.core[pr.dst] == c) // per_map)  # out channels
        group_in, group_out = c_in // pr.groups, c_out // pr.groups
        held_per_group = np.bincount(held // group_out, minlength=pr.groups)
        taps = int(np.prod(pr.kernel))
        rows = words_for(held_per_group[np.arange(c_in) // group_in] * taps, pr.weight_bits, word)
        return rows, np.arange(src.size) // (src.size // c_in)

    # --------------------------------------------------------------- report
    def neurons_per_core(self) -> np.ndarray:
        return sum(self.k.values(), np.zeros(self.n_cores, np.int64))

    def report(self, state_bits: int, trace_bits: int) -> dict:
        """Bytes of weights, neuron state and traces per core, and SRAM utilisation.

        State: every state variable of every neuron held (at the population's own width,
        else `state_bits`); traces: the postsynaptic traces of the neurons held plus, for
        each plastic STDP projection, the presynaptic trace of every source, replicated
        in each core that holds targets (the potentiation needs it there)."""
        word = self.hw.sram.word_bits
        wbytes = self.words_used * word / 8
        sram_bytes = self.hw.sram.size_kib * 1024
        state = np.zeros(self.n_cores)
        traces = np.zeros(self.n_cores)
        for p in self.spec.chip_populations:
            k = self.k[p.name]
            state += k * len(p.state_vars) * (p.state_bits or state_bits) / 8
            traces += k * len(p.trace_vars) * trace_bits / 8
        for pr in self.spec.projections:
            if pr.plastic == "stdp":
                n_src = self.spec.population(pr.src).size
                traces += np.where(self.k[pr.dst] > 0, n_src, 0) * trace_bits / 8
        resident = np.minimum(self.words_used, self.capacity_words) * word / 8
        return {
            "cores_used": int((self.neurons_per_core() > 0).sum()),
            "neurons_per_core": self.neurons_per_core().tolist(),
            "weight_bytes_per_core": wbytes.tolist(),
            "state_bytes_per_core": state.tolist(),
            "trace_bytes_per_core": traces.tolist(),
            "sram_bytes_per_core": sram_bytes,
            "sram_utilisation": (resident / sram_bytes).tolist(),
            "spilled_bytes_per_core": (self.words_spilled * word / 8).tolist(),
            "weight_bytes_total": float(wbytes.sum()),
            "spilled_bytes_total": float((self.words_spilled * word / 8).sum()),
        }


def _slots(core_of: np.ndarray, C: int) -> np.ndarray:
    """Each neuron's index among the neurons of its population on its core."""
    slot = np.zeros(len(core_of), np.int64)
    for c in np.unique(core_of):
        ids = np.flatnonzero(core_of == c)
        slot[ids] = np.arange(len(ids))
    return slot
