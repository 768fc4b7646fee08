"""A network read from NIR (the Neuromorphic Intermediate Representation, pip `nir`), as
populations of neurons with their incoming weights, run step by step on spike inputs in
the compiled kernels (ext/nir_kernels.pyx, or their reference snn_frontend/_nir_reference.py).

Import (`read_nir`): every weight node (`Affine`, `Linear`, optionally after `Scale` or
`Flatten`) is fused with the neuron node it feeds (`LIF`, `CubaLIF`, `IF`, or `LI`, a
non-spiking readout) into a population and its incoming projections; several weight nodes
may feed one population (recurrent graphs: an edge from a population back into an earlier
one carries the previous step's spikes); `Delay` nodes delay a projection by whole steps.
Anything else (`Conv2d`, pooling, nested
subgraphs, ...) is a `NirImportError` naming the node.

NIR stores continuous-time parameters (seconds); `dt_s` and a policy per neuron type say
how they become a step (docs/nir.md):

- integration `euler`:  v <- v + (dt / tau) (v_leak - v + r I)
- integration `exact`:  v <- v_leak + (v - v_leak) a + (1 - a) r I,   a = exp(-dt / tau)
- reset `zero`:      a neuron with v > v_threshold spikes and is set to v_reset at once
- reset `subtract`:  it spikes, and v_threshold is subtracted at its next update
  (snnTorch's `Leaky` and `Synaptic`; their NIR export writes v_reset = 0 but subtracts)

`CubaLIF` adds a synaptic current: i <- i (1 - dt / tau_syn) (euler) or i exp(-dt / tau_syn)
(exact), then i += w_in I, and v integrates r i of the step before. `IF`: v <- v + r I (its ODE is dv/dt = R I,
taken per step). `LI`: the LIF update without spikes. I is the sum of the incoming weight
nodes' outputs at the step (the bias of an `Affine` included).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "NEURON_TYPES",
    "POLICY_DEFAULTS",
    "NirImportError",
    "NirModel",
    "NirPopulation",
    "read_nir",
]

#: NIR neuron node -> our population kind
NEURON_TYPES = {"LIF": "lif", "CubaLIF": "cuba_lif", "IF": "if", "LI": "li"}
#: integration and reset of each kind when the config says nothing: NIR's own semantics
POLICY_DEFAULTS = {"lif": ("euler", "zero"), "cuba_lif": ("euler", "zero"),
                   "if": ("euler", "zero"), "li": ("euler", None)}
_WEIGHTS = ("Affine", "Linear")
_PASS = ("Scale", "Flatten", "Identity", "Delay")


class NirImportError(ValueError):
    """A NIR file this project cannot map (one clear line)."""


@dataclass
class NirPopulation:
    """One fused population: its neurons' parameters per step and its incoming weights."""

    name: str
    kind: str  # lif | cuba_lif | if | li
    size: int
    # (source population or "input", W (n_src, size) float32, delay in steps)
    incoming: list[tuple[str, np.ndarray, int]]
    bias: np.ndarray  # (size,) current added every step
    decay: np.ndarray  # membrane: v <- v_leak + (v - v_leak) decay + gain I  (euler/exact)
    gain: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray
    reset: str | None  # zero | subtract | None (LI)
    syn_decay: np.ndarray | None = None  # CubaLIF: i <- i syn_decay + w_in I
    w_in: np.ndarray | None = None

    @property
    def spiking(self) -> bool:
        return self.kind != "li"


@dataclass
class NirModel:
    """The populations in the order a step computes them; `inputs` is the input size."""

    inputs: int
    populations: list[NirPopulation]
    dt_s: float
    policy: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    backend: str = ""  # the kernels the last forward ran on
    synops: int = 0  # weight-row element additions of the last forward

    @property
    def readout(self) -> NirPopulation:
        return self.populations[-1]

    def forward(self, x: np.ndarray, *, backend: str | None = None, threads: int = 1
                ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Run a batch of input spikes x (B, T, inputs) bool: the spikes of every spiking
        population (B, T, size) bool, and the last population over time (B, T, size)
        float32 (an LI readout's membrane, or the last layer's spikes). The steps run in
        the compiled kernels (or their NumPy reference), the samples split over
        `threads`; `self.synops` holds the weight-row additions made."""
        from ._backend import kernels

        B, T, n = x.shape
        if n != self.inputs:
            raise ValueError(f"the input has {n} channels, the network {self.inputs}")
        self.backend, k = kernels(backend, "nir")
        pops = self.populations
        hist = {"input": np.ascontiguousarray(x.transpose(1, 0, 2)).view(np.uint8)}
        hist.update({p.name: np.zeros((T, B, p.size), np.uint8) for p in pops})
        last = np.zeros((T, B, pops[-1].size), np.float32)
        steps = [self._state(p, B) for p in pops]
        order = {p.name: i for i, p in enumerate(pops)}
        adds = np.zeros(max(threads, 1), np.int64)

        def run(part: int, b0: int, b1: int) -> None:
            for t in range(T):
                for p, (v, cur, syn, spk) in zip(pops, steps):
                    k.set_bias(cur, p.bias, b0, b1)
                    for src, W, delay in p.incoming:
                        # a source computed later in the step (recurrent) arrives a step late
                        lag = delay + (src != "input" and order[src] >= order[p.name])
                        if t >= lag:
                            adds[part] += k.add_spiking_rows(cur, hist[src][t - lag], W, b0, b1)
                    if syn is not None:
                        k.cuba_current(syn, cur, p.syn_decay, p.w_in, b0, b1)
                    if not p.spiking:
                        k.leaky_silent(v, cur, p.decay, p.gain, p.v_leak, b0, b1)
                    elif p.reset == "zero":
                        k.leaky_zero(v, cur, p.decay, p.gain, p.v_leak, p.v_threshold,
                                     p.v_reset, spk, b0, b1)
                    else:  # spk holds the last step's spikes: the subtraction owed
                        k.leaky_subtract(v, cur, p.decay, p.gain, p.v_leak, p.v_threshold,
                                         spk, b0, b1)
                    if p.spiking:
                        hist[p.name][t, b0:b1] = spk[b0:b1]
                last[t, b0:b1] = steps[-1][0][b0:b1] if not pops[-1].spiking \
                    else hist[pops[-1].name][t, b0:b1]

        parts = np.linspace(0, B, max(min(threads, B), 1) + 1).astype(int)
        if len(parts) > 2:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(parts) - 1) as pool:
                list(pool.map(run, range(len(parts) - 1), parts[:-1], parts[1:]))
        else:
            run(0, 0, B)
        self.synops = int(adds.sum())
        spikes = {p.name: hist[p.name].transpose(1, 0, 2).astype(bool) for p in pops
                  if p.spiking}
        return spikes, np.ascontiguousarray(last.transpose(1, 0, 2))

    @staticmethod
    def _state(p: NirPopulation, B: int):
        """Membrane, input current, synaptic current (CubaLIF) and spikes of a population."""
        v = np.tile(p.v_leak.astype(np.float32), (B, 1))
        syn = np.zeros((B, p.size), np.float32) if p.kind == "cuba_lif" else None
        return v, np.zeros((B, p.size), np.float32), syn, np.zeros((B, p.size), np.uint8)


# ------------------------------------------------------------------------------ import
def read_nir(path: str | Path, dt_s: float, policy: dict[str, tuple[str, str | None]]
             | None = None) -> NirModel:
    """Read a NIR file (or take a `nir.NIRGraph`) and fuse it into populations."""
    try:
        import nir
    except ImportError:
        raise NirImportError('network.model nir needs the nir package: pip install '
                             '"neuro-accel-sim[nir]"') from None
    if isinstance(path, (str, Path)):
        p = Path(path)
        if not p.is_file():
            raise NirImportError(f"network.path: no NIR file {p}")
        try:
            graph = nir.read(str(p))
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise NirImportError(f"network.path: {p} is not a readable NIR file ({exc})") from None
    else:
        graph = path
    policy = {**POLICY_DEFAULTS, **(policy or {})}
    return _fuse(graph, dt_s, policy)


def _fuse(graph, dt_s: float, policy) -> NirModel:
    nodes = graph.nodes
    kinds = {name: type(node).__name__ for name, node in nodes.items()}
    for name, kind in kinds.items():
        if kind == "NIRGraph":
            raise NirImportError(f"node {name!r}: nested subgraphs are not supported; "
                                 "flatten the graph before export")
        if kind not in (*_WEIGHTS, *_PASS, *NEURON_TYPES, "Input", "Output"):
            raise NirImportError(f"node {name!r}: {kind} cannot be mapped onto the chip "
                                 f"(supported: {', '.join((*_WEIGHTS, *_PASS, *NEURON_TYPES))})")
    inputs = [n for n, k in kinds.items() if k == "Input"]
    if len(inputs) != 1:
        raise NirImportError(f"the graph has {len(inputs)} Input nodes; one is supported")
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in graph.edges:
        preds[b].append(a)
    n_in = int(np.prod(nodes[inputs[0]].input_type["input"]))

    def steps_of(name: str) -> int:
        """A Delay node's delay in whole steps."""
        d = np.unique(np.asarray(nodes[name].delay, float))
        k = d / dt_s
        if len(d) != 1 or abs(k[0] - round(k[0])) > 1e-6 * max(1.0, abs(k[0])):
            raise NirImportError(f"node {name!r}: delays {d.tolist()} s are not one whole "
                                 f"number of {dt_s * 1e3:g} ms steps")
        return round(float(k[0]))

    def through(name: str, scale=1.0, delay: int = 0, stop=("Input", *NEURON_TYPES)):
        """Walk back from a node through Scale / Flatten / Identity / Delay nodes: the
        nodes of a `stop` kind reached, with the scale and delay on the way."""
        kind = kinds[name]
        if kind in stop:
            return [(name, scale, delay)]
        if kind in _PASS:
            s = np.asarray(nodes[name].scale, np.float32) if kind == "Scale" else 1.0
            d = steps_of(name) if kind == "Delay" else 0
            return [x for pre in preds[name] for x in through(pre, scale * s, delay + d, stop)]
        raise NirImportError(f"node {name!r}: a {kind} must feed a neuron node")

    def population_of(name: str) -> str:
        return "input" if kinds[name] == "Input" else name

    pops = []
    for name, kind in kinds.items():
        if kind not in NEURON_TYPES:
            continue
        size = int(np.prod(np.shape(getattr(nodes[name], "v_leak" if kind != "IF" else "r"))))
        incoming, bias = [], np.zeros(size, np.float32)
        for pre in preds[name]:
            for wnode, post_scale, post_delay in through(pre, stop=("Input", *NEURON_TYPES,
                                                                    *_WEIGHTS)):
                if kinds[wnode] in _WEIGHTS:
                    node = nodes[wnode]
                    W = np.asarray(node.weight, np.float32).T  # NIR: (out, in)
                    if W.shape[1] != size:
                        raise NirImportError(f"node {wnode!r}: {W.shape[1]} outputs feed "
                                             f"{name!r} of {size} neurons")
                    W = W * np.asarray(post_scale, np.float32).reshape(1, -1)
                    if kinds[wnode] == "Affine":
                        b = np.asarray(node.bias, np.float32).reshape(size)
                        bias = bias + b * np.asarray(post_scale, np.float32)
                    for src, scale, delay in (x for pp in preds[wnode] for x in through(pp)):
                        sc = np.asarray(scale, np.float32)
                        incoming.append((population_of(src),
                                         (W * (sc.reshape(-1, 1) if sc.ndim else sc)
                                          ).astype(np.float32), delay + post_delay))
                else:  # a direct connection: identity weights
                    sc = np.asarray(post_scale, np.float32)
                    incoming.append((population_of(wnode), np.eye(size, dtype=np.float32) * sc,
                                     post_delay))
        merged: dict[tuple[str, int], np.ndarray] = {}  # weight nodes alike add up
        for src, W, delay in incoming:
            key = (src, delay)
            merged[key] = merged[key] + W if key in merged else W
        pops.append(_population(name, NEURON_TYPES[kind], nodes[name], size,
                                [(s, np.ascontiguousarray(W, np.float32), d)
                                 for (s, d), W in merged.items()], bias, dt_s,
                                policy[NEURON_TYPES[kind]]))
    if not pops:
        raise NirImportError("the graph has no neuron nodes")
    order = _order(pops)
    for p in order:
        for src, W, _ in p.incoming:
            n_src = n_in if src == "input" else next(q.size for q in pops if q.name == src)
            if W.shape[0] != n_src:
                raise NirImportError(f"population {p.name!r}: weights of {W.shape[0]} inputs "
                                     f"from {src!r} of {n_src}")
    return NirModel(n_in, order, dt_s, {k: tuple(v) for k, v in policy.items()})


def _order(pops: list[NirPopulation]) -> list[NirPopulation]:
    """Feed-forward order (a population after its non-recurrent sources); the readout last."""
    done, out, todo = {"input"}, [], list(pops)
    while todo:
        ready = [p for p in todo if all(s in done or s == p.name or _reaches(s, p.name, pops)
                                        for s, _, _ in p.incoming)]
        nxt = ready[0] if ready else todo[0]  # a cycle: break it at the first population
        out.append(nxt)
        done.add(nxt.name)
        todo.remove(nxt)
    return out


def _reaches(a: str, b: str, pops: list[NirPopulation]) -> bool:
    """Whether population b feeds population a (so the edge a -> b closes a cycle: a's
    spikes reach b one step late)."""
    by = {p.name: p for p in pops}
    seen, stack = set(), [a]
    while stack:
        n = stack.pop()
        if n == "input" or n in seen:
            continue
        seen.add(n)
        for s, _, _ in by[n].incoming:
            if s == b:
                return True
            stack.append(s)
    return False


def _population(name, kind, node, size, incoming, bias, dt_s, policy) -> NirPopulation:
    """Per-step parameters, computed in float64 from the file's values, stored float32."""
    integration, reset = policy

    def f(key):
        return np.broadcast_to(np.asarray(getattr(node, key), np.float64), (size,)).copy()

    r = f("r")
    zeros = np.zeros(size)
    if kind == "if":
        decay, gain, v_leak = np.ones(size), r, zeros
    else:
        tau = f("tau_mem" if kind == "cuba_lif" else "tau")
        if integration == "exact":
            decay = np.exp(-dt_s / tau)
            gain = (1 - decay) * r
        else:
            decay = 1 - dt_s / tau
            gain = dt_s / tau * r
        v_leak = f("v_leak")
    spiking = kind != "li"
    v_th = f("v_threshold") if spiking else zeros
    v_reset = (f("v_reset") if spiking and getattr(node, "v_reset", None) is not None
               else zeros)
    syn_decay = w_in = None
    if kind == "cuba_lif":
        tau_syn = f("tau_syn")
        syn_decay = np.exp(-dt_s / tau_syn) if integration == "exact" else 1 - dt_s / tau_syn
        w_in = f("w_in")
    f32 = lambda a: None if a is None else np.asarray(a, np.float32)
    return NirPopulation(name, kind, size, incoming, bias, f32(decay), f32(gain), f32(v_leak),
                         f32(v_th), f32(v_reset), reset if spiking else None, f32(syn_decay),
                         f32(w_in))
