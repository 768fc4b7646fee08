"""A network read from NIR (the Neuromorphic Intermediate Representation, pip `nir`), as
populations of neurons with their incoming weights, run step by step on spike inputs in
the compiled kernels (ext/nir_kernels.pyx, or their reference snn_frontend/_nir_reference.py).

Import (`read_nir`): every weight node (`Affine`, `Linear`, `Conv2d`, `Conv1d`,
`SumPool2d`, `AvgPool2d`, optionally after `Scale` or `Flatten`) is fused with the neuron
node it feeds (`LIF`, `CubaLIF`, `IF`, `Threshold`, or `LI`, a non-spiking readout) into
a population and its incoming projections; several weight nodes may feed one population
(recurrent graphs: an edge from a population back into an earlier one carries the
previous step's spikes); `Delay` nodes delay a projection by whole steps. A population
behind a conv or pool is a map (channels, height, width), flattened channel-major as
PyTorch does (so `Flatten` changes no index), and its neuron parameters may be scalars.
Conv and pool projections run event-driven: a presynaptic spike adds its synapses' weights
(the kernel taps that land in the output map) in a fixed order. Anything else (nested
subgraphs, ...) is a `NirImportError` naming the node.

NIR stores continuous-time parameters (seconds); `dt_s` and a policy per neuron type say
how they become a step (docs/nir.md):

- integration `euler`:  v <- v + (dt / tau) (v_leak - v + r I)
- integration `exact`:  v <- v_leak + (v - v_leak) a + (1 - a) r I,   a = exp(-dt / tau)
- integration `sanafe` (LIF, IF): SANA-FE's neuron (snn_frontend/sanafe_lif.py) with
  leak_decay = 1 - dt / tau (IF: 1), input and bias scaled by dt r / tau (IF: r), state
  in double precision; reset `zero` is its hard reset to v_reset, `subtract` its soft
  one (v - v_threshold at once); a spike reaches it a step after it was fired (SANA-FE's
  timing, every projection); it records the neurons updated at each step (`active`)
- reset `zero`:      a neuron with v > v_threshold spikes and is set to v_reset at once
- reset `subtract`:  it spikes, and v_threshold is subtracted at its next update
  (snnTorch's `Leaky` and `Synaptic`; their NIR export writes v_reset = 0 but subtracts)

`CubaLIF` adds a synaptic current: i <- i (1 - dt / tau_syn) (euler) or i exp(-dt / tau_syn)
(exact), then i += w_in I, and v integrates r i of the step before. `IF`: v <- v + r I (its ODE is dv/dt = R I,
taken per step). `Threshold`: a spike where I > threshold, no memory. `LI`: the LIF update
without spikes. I is the sum of the incoming weight nodes' outputs at the step (the bias
of an `Affine` or a conv included).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .sanafe_lif import SanafeLif, sanafe_step
from .spec import conv_output_shape, expand_geometry

__all__ = [
    "NEURON_TYPES",
    "POLICY_DEFAULTS",
    "NirImportError",
    "NirModel",
    "NirPopulation",
    "Synapses",
    "read_nir",
]

#: NIR neuron node -> our population kind
NEURON_TYPES = {"LIF": "lif", "CubaLIF": "cuba_lif", "IF": "if", "LI": "li",
                "Threshold": "threshold"}
#: integration and reset of each kind when the config says nothing: NIR's own semantics
POLICY_DEFAULTS = {"lif": ("euler", "zero"), "cuba_lif": ("euler", "zero"),
                   "if": ("euler", "zero"), "li": ("euler", None),
                   "threshold": ("euler", "zero")}
_DENSE = ("Affine", "Linear")
_MAPS = ("Conv2d", "Conv1d", "SumPool2d", "AvgPool2d")
_WEIGHTS = _DENSE + _MAPS
_PASS = ("Scale", "Flatten", "Identity", "Delay")


class NirImportError(ValueError):
    """A NIR file this project cannot map (one clear line)."""


@dataclass
class Synapses:
    """One incoming projection of a population, from `src` ("input" or a population),
    `delay` steps late. Dense: `W` (n_src, size). A conv or pool (`connectivity` conv2d,
    conv1d, sumpool2d, avgpool2d; `geometry`: kernel, stride, padding, dilation, groups;
    `kernel`: a conv's weights (out, in / groups, *kernel)) runs as rows of synapses per
    presynaptic neuron: `ptr` (n_src + 1, int64), `post` (int32) and `w` (float32) per
    synapse."""

    src: str
    delay: int
    W: np.ndarray | None = None
    connectivity: str = "dense"
    geometry: dict = field(default_factory=dict)
    kernel: np.ndarray | None = None
    ptr: np.ndarray | None = None
    post: np.ndarray | None = None
    w: np.ndarray | None = None

    @property
    def n_synapses(self) -> int:
        return self.W.size if self.W is not None else len(self.post)

    def nonzero_per_row(self) -> np.ndarray:
        """(n_src,) synapses of each presynaptic neuron whose weight is not zero."""
        if self.W is not None:
            return (self.W != 0).sum(axis=1)
        return np.add.reduceat(np.append(self.w != 0, False), self.ptr[:-1]) * (
            np.diff(self.ptr) > 0)


@dataclass
class NirPopulation:
    """One fused population: its neurons' parameters per step and its incoming weights."""

    name: str
    kind: str  # lif | cuba_lif | if | li | threshold
    size: int
    incoming: list[Synapses]
    bias: np.ndarray  # (size,) current added every step
    decay: np.ndarray  # membrane: v <- v_leak + (v - v_leak) decay + gain I  (euler/exact)
    gain: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray
    reset: str | None  # zero | subtract | None (LI)
    syn_decay: np.ndarray | None = None  # CubaLIF: i <- i syn_decay + w_in I
    w_in: np.ndarray | None = None
    shape: tuple[int, ...] | None = None  # a map: (channels, height, width) | (channels, length)
    # integration `sanafe`: SANA-FE's neuron (snn_frontend.sanafe_lif) with these
    # parameters (threshold, reset, leak_decay, bias: (size,) float64 of float32 values)
    sanafe: dict | None = None

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
    input_shape: tuple[int, ...] | None = None  # the Input node's shape
    backend: str = ""  # the kernels the last forward ran on
    synops: int = 0  # weight-row element additions of the last forward
    # populations with SANA-FE's neuron: the neurons it counted as updated in the last
    # forward, (B, T, size) bool
    active: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def readout(self) -> NirPopulation:
        return self.populations[-1]

    def forward(self, x: np.ndarray, *, backend: str | None = None, threads: int = 1
                ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Run a batch of input spikes x (B, T, inputs) bool: the spikes of every spiking
        population (B, T, size) bool, and the last population over time (B, T, size)
        float32 (views of the step-major buffers, not copies) (an LI readout's membrane, or the last layer's spikes). The steps run in
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
        adds = np.zeros(max(threads, 1), np.int64)
        sf = {p.name: _SanafeState(p, B, T) for p in pops if p.sanafe is not None}
        lags = {(p.name, i): self.lag(p, sy) for p in pops for i, sy in enumerate(p.incoming)}

        def run(part: int, b0: int, b1: int) -> None:
            for t in range(T):
                for p, (v, cur, syn, spk) in zip(pops, steps):
                    s = sf.get(p.name)
                    k.set_bias(cur, p.bias if s is None else s.no_bias, b0, b1)
                    for i, sy in enumerate(p.incoming):
                        lag = lags[p.name, i]
                        if t < lag:
                            continue
                        S = hist[sy.src][t - lag]
                        adds[part] += (k.add_spiking_rows(cur, S, sy.W, b0, b1) if sy.W is not None
                                       else k.add_spiking_csr(cur, S, sy.ptr, sy.post, sy.w, b0, b1))
                        if s is not None:
                            s.reach(sy, S, b0, b1)
                    if s is not None:
                        s.step(t, cur, spk, b0, b1)
                    else:
                        _update(k, p, v, cur, syn, spk, b0, b1)
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
        self.active = {name: s.updated.transpose(1, 0, 2) for name, s in sf.items()}
        spikes = {p.name: hist[p.name].view(bool).transpose(1, 0, 2) for p in pops  # 0/1: views
                  if p.spiking}
        return spikes, last.transpose(1, 0, 2)

    def lag(self, p: NirPopulation, sy: Synapses) -> int:
        """Steps from a spike of sy's source to its arrival in p: its delay, plus one for a
        source computed later in the step (recurrent) and for SANA-FE's neuron (every
        spike arrives a step later there)."""
        order = [q.name for q in self.populations]
        late = sy.src != "input" and order.index(sy.src) >= order.index(p.name)
        return sy.delay + int(late or p.sanafe is not None)

    @staticmethod
    def _state(p: NirPopulation, B: int):
        """Membrane, input current, synaptic current (CubaLIF) and spikes of a population."""
        v = np.tile(p.v_leak.astype(np.float32), (B, 1))
        syn = np.zeros((B, p.size), np.float32) if p.kind == "cuba_lif" else None
        return v, np.zeros((B, p.size), np.float32), syn, np.zeros((B, p.size), np.uint8)


def _update(k, p: NirPopulation, v, cur, syn, spk, b0: int, b1: int) -> None:
    """One step of population p's neurons in the kernels (its synaptic current first)."""
    if syn is not None:
        k.cuba_current(syn, cur, p.syn_decay, p.w_in, b0, b1)
    if not p.spiking:
        k.leaky_silent(v, cur, p.decay, p.gain, p.v_leak, b0, b1)
    elif p.reset == "zero":
        k.leaky_zero(v, cur, p.decay, p.gain, p.v_leak, p.v_threshold, p.v_reset, spk, b0, b1)
    else:  # spk holds the last step's spikes: the subtraction owed
        k.leaky_subtract(v, cur, p.decay, p.gain, p.v_leak, p.v_threshold, spk, b0, b1)


class _SanafeState:
    """A population with SANA-FE's neuron: its float64 membranes, the neurons a synapse
    reached this step, and the neurons updated at every step. The kernels add its input
    (without the bias, which SANA-FE adds on its own); `step` is `sanafe_step`."""

    def __init__(self, p: NirPopulation, B: int, T: int):
        self.p = p
        self.v = np.zeros((B, p.size))
        self.hit = np.zeros((B, p.size), bool)
        self.updated = np.zeros((T, B, p.size), bool)
        self.no_bias = np.zeros(p.size, np.float32)
        self.gain = p.gain.astype(np.float64)
        self._patterns: dict[int, sp.csr_matrix] = {}

    def reach(self, sy: Synapses, S: np.ndarray, b0: int, b1: int) -> None:
        """Mark the neurons a spike of S reached: every target of a dense projection (SANA-FE
        connects every pair of a dense layer, zero weights too), the synapses of a conv or
        pool (every kernel tap that lands in the map)."""
        if sy.W is not None:
            self.hit[b0:b1] |= S[b0:b1].any(axis=1)[:, None]
            return
        P = self._patterns.get(id(sy))
        if P is None:
            P = self._patterns[id(sy)] = sp.csr_matrix(
                (np.ones(len(sy.post), np.float32), sy.post, sy.ptr),
                shape=(len(sy.ptr) - 1, self.p.size))
        self.hit[b0:b1] |= (sp.csr_matrix(S[b0:b1].astype(np.float32)) @ P).toarray() > 0

    def step(self, t: int, cur, spk, b0: int, b1: int) -> None:
        v = self.v[b0:b1]
        fired, updated = sanafe_step(v, self.gain * cur[b0:b1].astype(np.float64),
                                     self.hit[b0:b1], t == 0, self.p.sanafe,
                                     "hard" if self.p.reset == "zero" else "soft")
        spk[b0:b1] = fired
        self.updated[t, b0:b1] = updated
        self.hit[b0:b1] = False


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
            graph = nir.read(str(p), type_check=False)  # shapes: checked here, by node
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
    walk = _Walk(nodes, kinds, preds, dt_s)
    links = {name: walk.links(name) for name, kind in kinds.items() if kind in NEURON_TYPES}
    if not links:
        raise NirImportError("the graph has no neuron nodes")
    shapes = _shapes(nodes, kinds, links, _input_shape(nodes[inputs[0]]))
    pops = [_fused(name, NEURON_TYPES[kinds[name]], nodes[name], links[name], shapes, nodes,
                   kinds, dt_s, policy[NEURON_TYPES[kinds[name]]]) for name in links]
    return NirModel(int(np.prod(shapes["input"])), _order(pops), dt_s,
                    {k: tuple(v) for k, v in policy.items()}, input_shape=shapes["input"])


def _input_shape(node) -> tuple[int, ...]:
    shape = tuple(int(x) for x in np.asarray(node.input_type["input"]).ravel())
    return shape if len(shape) != 1 else (shape[0],)


class _Walk:
    """The weight nodes and sources behind each neuron node (through Scale, Flatten,
    Identity and Delay nodes, with the scale and delay on the way)."""

    def __init__(self, nodes, kinds, preds, dt_s):
        self.nodes, self.kinds, self.preds, self.dt_s = nodes, kinds, preds, dt_s

    def steps_of(self, name: str) -> int:
        """A Delay node's delay in whole steps."""
        d = np.unique(np.asarray(self.nodes[name].delay, float))
        k = d / self.dt_s
        if len(d) != 1 or abs(k[0] - round(k[0])) > 1e-6 * max(1.0, abs(k[0])):
            raise NirImportError(f"node {name!r}: delays {d.tolist()} s are not one whole "
                                 f"number of {self.dt_s * 1e3:g} ms steps")
        return round(float(k[0]))

    def through(self, name: str, scale=1.0, delay: int = 0, stop=("Input", *NEURON_TYPES)):
        """The nodes of a `stop` kind reached walking back from `name`: (node, scale,
        delay)."""
        kind = self.kinds[name]
        if kind in stop:
            return [(name, scale, delay)]
        if kind in _PASS:
            s = np.asarray(self.nodes[name].scale, np.float32) if kind == "Scale" else 1.0
            d = self.steps_of(name) if kind == "Delay" else 0
            return [x for pre in self.preds[name]
                    for x in self.through(pre, scale * s, delay + d, stop)]
        raise NirImportError(f"node {name!r}: a {kind} must feed a neuron node")

    def links(self, name: str) -> list[tuple]:
        """(weight nodes in the order they apply, or None; post scale, delay, [(source
        population, pre scale, delay)]) for every way into the neuron node `name` (None: a
        direct connection). Weight nodes in series without neurons between them (a pool
        before a Linear) are one link."""
        out = []
        stop = ("Input", *NEURON_TYPES, *_WEIGHTS)
        for pre in self.preds[name]:
            for wnode, post_scale, post_delay in self.through(pre, stop=stop):
                if self.kinds[wnode] not in _WEIGHTS:
                    out.append((None, post_scale, post_delay,
                                [(_pop(self.kinds, wnode), 1.0, 0)]))
                    continue
                chain, srcs = [wnode], []
                todo = [(p, 1.0, 0) for p in self.preds[wnode]]
                while todo:
                    node, sc, d = todo.pop(0)
                    for x, sc2, d2 in self.through(node, sc, d, stop):
                        if self.kinds[x] not in _WEIGHTS:
                            srcs.append((_pop(self.kinds, x), sc2, d2))
                        elif np.any(np.asarray(sc2) != 1) or d2 or len(self.preds[x]) != 1:
                            raise NirImportError(f"node {x!r}: weight nodes in series are "
                                                 "fused only without a scale, delay or "
                                                 "branch between them")
                        else:
                            chain.insert(0, x)
                            todo.append((self.preds[x][0], 1.0, 0))
                out.append((tuple(chain), post_scale, post_delay, srcs))
        return out


def _pop(kinds, name: str) -> str:
    return "input" if kinds[name] == "Input" else name


def _geometry(node, kind: str, name: str, rank: int) -> dict:
    """kernel, stride, padding, dilation, groups of a conv or pool node, as tuples."""
    def tup(v, what):
        t = (int(v),) * rank if np.ndim(v) == 0 else tuple(int(x) for x in np.ravel(v))
        if len(t) != rank:
            raise NirImportError(f"node {name!r}: {what} {v} is not {rank} numbers")
        return t

    if kind.startswith("Conv"):
        kernel = tuple(node.weight.shape[2:])
        dil = tup(node.dilation, "dilation")
        pad = node.padding
        if isinstance(pad, str):
            total = [d * (k - 1) for d, k in zip(dil, kernel)]
            if pad == "same" and any(t % 2 for t in total):
                raise NirImportError(f"node {name!r}: padding 'same' with kernel {kernel} pads "
                                     "one side more than the other, which is not supported")
            pad = [t // 2 for t in total] if pad == "same" else 0
        return {"kernel": kernel, "stride": tup(node.stride, "stride"),
                "padding": tup(pad, "padding"), "dilation": dil, "groups": int(node.groups)}
    kernel = tup(node.kernel_size, "kernel_size")
    return {"kernel": kernel, "stride": tup(node.stride, "stride"),
            "padding": tup(node.padding, "padding"), "dilation": (1,) * rank, "groups": 1}


def _map_out(node, kind: str, name: str, src_shape) -> tuple[tuple[int, ...], dict]:
    """A conv or pool node's output shape from its input's shape, and its geometry."""
    rank = 1 if kind == "Conv1d" else 2
    if src_shape is None or len(src_shape) != rank + 1:
        raise NirImportError(f"node {name!r}: a {kind} needs a (channels, "
                             f"{'height, width' if rank == 2 else 'length'}) input, its input "
                             f"has shape {src_shape}")
    g = _geometry(node, kind, name, rank)
    if kind.startswith("Conv"):
        c_out, c_in = node.weight.shape[0], node.weight.shape[1] * g["groups"]
        if c_in != src_shape[0]:
            raise NirImportError(f"node {name!r}: its kernel takes {c_in} input channels, its "
                                 f"input has shape {src_shape}")
    else:
        c_out = src_shape[0]
    out = conv_output_shape(src_shape, c_out, g["kernel"], g["stride"], g["padding"],
                            g["dilation"])
    if min(out) < 1:
        raise NirImportError(f"node {name!r}: a {kind} of input {src_shape} leaves output {out}")
    return out, g


def _shapes(nodes, kinds, links, input_shape) -> dict[str, tuple[int, ...]]:
    """Every population's shape: what its weight nodes make of their sources' shapes (a
    dense layer: its outputs), else its neuron parameters' shape."""
    shapes = {"input": input_shape}
    todo = list(links)
    while todo:
        progress = False
        for name in list(todo):
            shape = _shape_of(name, nodes, kinds, links[name], shapes)
            if shape is not None:
                shapes[name] = shape
                todo.remove(name)
                progress = True
        if not progress:  # a loop of maps: take the neuron parameters' shape
            name = todo.pop(0)
            shapes[name] = _param_shape(nodes[name], kinds[name], name)
    return shapes


def _shape_of(name, nodes, kinds, links, shapes):
    for chain, _, _, srcs in links:
        if chain is None:
            if srcs[0][0] in shapes:
                return shapes[srcs[0][0]]
            continue
        if kinds[chain[-1]] in _DENSE:
            return (int(np.asarray(nodes[chain[-1]].weight).shape[0]),)
        if srcs and srcs[0][0] in shapes:
            return _stage_shapes(chain, nodes, kinds, shapes[srcs[0][0]])[-1]
    return None


def _stage_shapes(chain, nodes, kinds, src_shape) -> list[tuple[int, ...]]:
    """The output shape of each weight node of a chain, from the source's shape."""
    out, shape = [], tuple(src_shape)
    for w in chain:
        if kinds[w] in _DENSE:
            weight = np.asarray(nodes[w].weight)
            if weight.shape[1] != int(np.prod(shape)):
                raise NirImportError(f"node {w!r}: weights {weight.shape} (out, in) take "
                                     f"{weight.shape[1]} inputs, its input has shape {shape}")
            shape = (int(weight.shape[0]),)
        else:
            shape = _map_out(nodes[w], kinds[w], w, shape)[0]
        out.append(shape)
    return out


def _param_shape(node, kind, name) -> tuple[int, ...]:
    key = {"IF": "r", "Threshold": "threshold"}.get(kind, "v_leak")
    shape = np.shape(getattr(node, key))
    return tuple(int(x) for x in shape) if shape else (1,)


def _fused(name, kind, node, links, shapes, nodes, kinds, dt_s, policy) -> NirPopulation:
    """The population of neuron node `name`: its synapses, bias and per-step parameters."""
    shape = shapes[name]
    size = int(np.prod(shape))
    bias = np.zeros(size, np.float32)
    dense: dict[tuple[str, int], np.ndarray] = {}  # dense weight nodes alike add up
    maps: list[Synapses] = []
    for chain, post_scale, post_delay, srcs in links:
        post = np.broadcast_to(np.asarray(post_scale, np.float32).ravel(), (size,))
        if chain is None:  # a direct connection: identity weights
            key = (srcs[0][0], post_delay)
            eye = np.diag(post).astype(np.float32)
            dense[key] = dense[key] + eye if key in dense else eye
            continue
        for src, pre_scale, delay in srcs:
            n_src = int(np.prod(shapes[src]))
            pre = np.broadcast_to(np.asarray(pre_scale, np.float32).ravel(), (n_src,))
            key = (src, delay + post_delay)
            if len(chain) == 1 and kinds[chain[0]] in _MAPS:
                maps.append(_map_synapses(chain[0], kinds[chain[0]], nodes[chain[0]], src,
                                          shapes[src], shape, pre, post, key[1]))
                continue
            W = _chain_weights(chain, nodes, kinds, shapes[src], name, size)
            W = ((W * post[None, :]) * pre[:, None]).astype(np.float32)
            dense[key] = dense[key] + W if key in dense else W
        bias = bias + _chain_bias(chain, nodes, kinds, shapes[srcs[0][0]] if srcs else shape,
                                  size) * post
    incoming = [Synapses(s, d, W=np.ascontiguousarray(W)) for (s, d), W in dense.items()] + maps
    pop = _population(name, kind, node, size, incoming, bias, dt_s, policy)
    pop.shape = shape if len(shape) > 1 else None
    return pop


def _stage_matrix(w, nodes, kinds, in_shape, out_shape):
    """One weight node as an (inputs, outputs) matrix: dense, or sparse for a conv or pool."""
    from scipy.sparse import csr_matrix

    if kinds[w] in _DENSE:
        return np.asarray(nodes[w].weight, np.float32).T  # NIR: (out, in)
    _, g = _map_out(nodes[w], kinds[w], w, in_shape)
    conn = _MAP_KIND[kinds[w]]
    pre, post, kidx = expand_geometry(conn, in_shape, out_shape, g["kernel"], g["stride"],
                                      g["padding"], g["dilation"], g["groups"])
    vals = _map_weights(conn, nodes[w], g, kidx)
    return csr_matrix((vals.astype(np.float64), (pre, post)),
                      shape=(int(np.prod(in_shape)), int(np.prod(out_shape))))


def _chain_weights(chain, nodes, kinds, src_shape, name, size) -> np.ndarray:
    """A chain's weights from its source into `name` (n_src, size), float32: one node's
    own, or the product of several (in float64, rounded once)."""
    shapes = _stage_shapes(chain, nodes, kinds, src_shape)
    if shapes[-1] != (size,) and int(np.prod(shapes[-1])) != size:
        raise NirImportError(f"node {chain[-1]!r}: {int(np.prod(shapes[-1]))} outputs feed "
                             f"{name!r} of {size} neurons")
    ins = [tuple(src_shape)] + shapes[:-1]
    mats = [_stage_matrix(w, nodes, kinds, i, o) for w, i, o in zip(chain, ins, shapes)]
    if len(mats) == 1:
        W = mats[0]
        if W.shape != (int(np.prod(src_shape)), size):
            raise NirImportError(f"node {chain[0]!r}: weights {W.shape[::-1]} (out, in) "
                                 f"connect {int(np.prod(src_shape))} inputs to {name!r} of "
                                 f"{size} neurons")
        return W
    M = mats[0]
    for A in mats[1:]:
        M = M @ (A.astype(np.float64) if isinstance(A, np.ndarray) else A)
    return np.asarray(M.todense() if hasattr(M, "todense") else M).astype(np.float32)


def _chain_bias(chain, nodes, kinds, src_shape, size) -> np.ndarray:
    """The constant current a chain adds: each node's bias carried through the nodes after
    it."""
    shapes = _stage_shapes(chain, nodes, kinds, src_shape)
    ins = [tuple(src_shape)] + shapes[:-1]
    b = None
    for w, i, o in zip(chain, ins, shapes):
        if b is not None:
            b = np.asarray(b @ _stage_matrix(w, nodes, kinds, i, o)).ravel()
        if kinds[w] in ("Affine", "Conv2d", "Conv1d"):
            own = np.asarray(nodes[w].bias, np.float64).ravel()
            own = own if kinds[w] == "Affine" else np.repeat(own, int(np.prod(o)) // len(own))
            b = own if b is None else b + own
    return np.zeros(size, np.float32) if b is None else b.reshape(size).astype(np.float32)


_MAP_KIND = {"Conv2d": "conv2d", "Conv1d": "conv1d", "SumPool2d": "sumpool2d",
             "AvgPool2d": "avgpool2d"}


def _map_weights(conn: str, node, g: dict, kidx: np.ndarray) -> np.ndarray:
    """Each synapse's weight: its kernel tap (conv), 1 (sum pool) or 1 / window (avg)."""
    if conn.startswith("conv"):
        return np.asarray(node.weight, np.float32).ravel()[kidx]
    return np.full(len(kidx), 1.0 if conn == "sumpool2d" else 1.0 / np.prod(g["kernel"]),
                   np.float32)


def _map_synapses(wnode, kind, node, src, src_shape, out_shape, pre_scale, post_scale,
                  delay) -> Synapses:
    """A conv or pool node as rows of synapses per presynaptic neuron."""
    shape, g = _map_out(node, kind, wnode, src_shape)
    if shape != tuple(out_shape):
        raise NirImportError(f"node {wnode!r}: a {kind} of input {src_shape} gives {shape}, "
                             f"the population it feeds has shape {tuple(out_shape)}")
    conn = _MAP_KIND[kind]
    pre, post, kidx = expand_geometry(conn, src_shape, shape, g["kernel"], g["stride"],
                                      g["padding"], g["dilation"], g["groups"])
    kernel = np.asarray(node.weight, np.float32) if conn.startswith("conv") else None
    w = _map_weights(conn, node, g, kidx)
    w = ((w * post_scale[post]) * pre_scale[pre]).astype(np.float32)
    order = np.argsort(pre, kind="stable")  # rows by presynaptic neuron, synapses in order
    ptr = np.zeros(int(np.prod(src_shape)) + 1, np.int64)
    np.cumsum(np.bincount(pre, minlength=len(ptr) - 1), out=ptr[1:])
    return Synapses(src, delay, None, conn, g, kernel, ptr, post[order].astype(np.int32),
                    np.ascontiguousarray(w[order]))


def _order(pops: list[NirPopulation]) -> list[NirPopulation]:
    """Feed-forward order (a population after its non-recurrent sources); the readout last."""
    done, out, todo = {"input"}, [], list(pops)
    while todo:
        ready = [p for p in todo if all(sy.src in done or sy.src == p.name
                                        or _reaches(sy.src, p.name, pops) for sy in p.incoming)]
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
        for sy in by[n].incoming:
            if sy.src == b:
                return True
            stack.append(sy.src)
    return False


def _population(name, kind, node, size, incoming, bias, dt_s, policy) -> NirPopulation:
    """Per-step parameters, computed in float64 from the file's values (scalars broadcast
    to every neuron), stored float32."""
    integration, reset = policy

    def f(key):
        a = np.asarray(getattr(node, key), np.float64).ravel()
        if a.size not in (1, size):
            raise NirImportError(f"node {name!r}: {key} has {a.size} values for {size} neurons")
        return np.broadcast_to(a, (size,)).copy()

    zeros = np.zeros(size)
    if kind == "threshold":  # no memory: v = I, a spike where it exceeds the threshold
        decay, gain, v_leak = zeros, np.ones(size), zeros
    elif kind == "if":
        decay, gain, v_leak = np.ones(size), f("r"), zeros
    else:
        r = f("r")
        tau = f("tau_mem" if kind == "cuba_lif" else "tau")
        if integration == "exact":
            decay = np.exp(-dt_s / tau)
            gain = (1 - decay) * r
        else:
            decay = 1 - dt_s / tau
            gain = dt_s / tau * r
        v_leak = f("v_leak")
    spiking = kind != "li"
    v_th = (f("threshold") if kind == "threshold" else f("v_threshold")) if spiking else zeros
    v_reset = (f("v_reset") if spiking and getattr(node, "v_reset", None) is not None
               else zeros)
    syn_decay = w_in = None
    if kind == "cuba_lif":
        tau_syn = f("tau_syn")
        syn_decay = np.exp(-dt_s / tau_syn) if integration == "exact" else 1 - dt_s / tau_syn
        w_in = f("w_in")
    f32 = lambda a: None if a is None else np.asarray(a, np.float32)  # noqa: E731
    pop = NirPopulation(name, kind, size, incoming, bias, f32(decay), f32(gain), f32(v_leak),
                        f32(v_th), f32(v_reset), reset if spiking else None, f32(syn_decay),
                        f32(w_in))
    if integration == "sanafe":
        if kind not in ("lif", "if"):
            raise NirImportError(f"node {name!r}: integration sanafe is SANA-FE's LIF, for "
                                 f"LIF and IF nodes (not {kind})")
        if np.any(v_leak != 0):
            raise NirImportError(f"node {name!r}: SANA-FE's LIF leaks toward 0; v_leak must "
                                 "be 0 for integration sanafe")
        # its leak is the euler decay; the input and the bias enter scaled by the gain
        pop.sanafe = SanafeLif(threshold=v_th, reset=v_reset, leak_decay=decay,
                               bias=gain * bias).arrays(name, size)
    return pop
