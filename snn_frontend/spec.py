"""NetworkSpec: the network as data, written by the frontend and carried by the SpikeTrace.

A spec is a graph of populations (nodes) and projections (edges). It is all the chip
simulator knows about a network: mapping, counting, routing and timing iterate over it
and never name a model family. Every frontend model writes its spec
(`snn_frontend.models`), and a spec can be written by hand for any other network.

- `Population(name, size, kind, state_vars, trace_vars, state_bits, shape)`: `kind` is
  `input` (a spike source outside the chip: its spikes enter at the chip's input port),
  `lif`, `conductance_lif`, `adaptive_lif` or `readout`; the variables it keeps per neuron
  size its state memory (`state_bits` None: the chip's state format; a `bias` variable
  also makes every neuron change at every step). `shape` is `(channels, height, width)`
  or `(channels, length)` for a map, flattened channel-major (index c*H*W + y*W + x, as
  PyTorch and SANA-FE do); its product is the size.
- `Projection(src, dst, connectivity, weight_bits, plastic, pairs, kernel, stride,
  padding, dilation, groups)`: `connectivity` is `dense` (all-to-all, a weight each),
  `one_to_one` (src i -> dst i), `all_but_self` (src i -> every dst j != i, a weight
  each), `lateral` (all-but-self with one scalar strength: no weight memory), `sparse`
  (explicit (pre, post) pairs, `pairs`), `conv2d` / `conv1d` (one shared kernel of
  `out_channels x in_channels/groups x kernel` weights; `stride`, `padding`, `dilation`
  default 1, 0, 1), `sumpool2d` / `avgpool2d` (a window per channel, no weights; `stride`
  defaults to the kernel) or `flatten` (src i -> dst i, a reshape without weights);
  `plastic` names the learning rule that writes it (`none`, `stdp`, `bptt`). The geometric
  kinds need both populations' shapes; the spec checks them and names the dimension that
  does not fit, and `Projection.connections` lists every (pre, post) synapse they make.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

__all__ = ["NetworkSpec", "Population", "Projection", "SpecError", "POPULATION_KINDS",
           "CONNECTIVITIES", "GEOMETRIC", "WEIGHTLESS", "LEARNING_RULES", "spec_summary",
           "index_bits", "expand_geometry", "conv_output_shape"]

POPULATION_KINDS = ("input", "lif", "conductance_lif", "adaptive_lif", "readout")
CONNECTIVITIES = ("dense", "one_to_one", "all_but_self", "lateral", "sparse", "conv2d",
                  "conv1d", "sumpool2d", "avgpool2d", "flatten")
#: connectivities whose synapses follow from the populations' shapes
GEOMETRIC = ("conv2d", "conv1d", "sumpool2d", "avgpool2d")
#: connectivities that store no weight per synapse
WEIGHTLESS = ("lateral", "sumpool2d", "avgpool2d", "flatten")
LEARNING_RULES = ("none", "stdp", "bptt")


class SpecError(ValueError):
    """A network spec that is not a valid graph (a user error: exit 2)."""


@dataclass(frozen=True)
class Population:
    name: str
    size: int
    kind: str = "lif"
    state_vars: tuple[str, ...] = ("v",)  # per-neuron state variables
    trace_vars: tuple[str, ...] = ()  # per-neuron learning traces
    state_bits: int | None = None  # None: the chip's formats.state_bits
    shape: tuple[int, ...] | None = None  # (channels, height, width) or (channels, length)

    def __post_init__(self):
        object.__setattr__(self, "state_vars", tuple(self.state_vars))
        object.__setattr__(self, "trace_vars", tuple(self.trace_vars))
        if self.shape is not None:
            shape = tuple(int(x) for x in self.shape)
            if len(shape) not in (2, 3) or min(shape) < 1:
                raise SpecError(f"population {self.name!r}: shape {self.shape} is not "
                                "(channels, height, width) nor (channels, length) of sizes >= 1")
            if int(np.prod(shape)) != int(self.size):
                raise SpecError(f"population {self.name!r}: shape {shape} holds "
                                f"{int(np.prod(shape))} neurons, its size is {self.size}")
            object.__setattr__(self, "shape", shape)
        if not self.name or any(c in self.name for c in ":>/"):
            raise SpecError(f"population name {self.name!r}: give a non-empty name without "
                            "':', '>' or '/'")
        if int(self.size) < 1:
            raise SpecError(f"population {self.name!r}: size must be >= 1 (got {self.size})")
        if self.kind not in POPULATION_KINDS:
            raise SpecError(f"population {self.name!r}: kind {self.kind!r} is not one of "
                            f"{', '.join(POPULATION_KINDS)}")
        object.__setattr__(self, "size", int(self.size))

    @property
    def on_chip(self) -> bool:
        """Input populations are spike sources outside the chip."""
        return self.kind != "input"

    @property
    def biased(self) -> bool:
        """A bias changes every neuron at every step (it is updated even without input)."""
        return "bias" in self.state_vars

    def to_dict(self) -> dict:
        d = {"name": self.name, "size": self.size, "kind": self.kind,
             "state_vars": list(self.state_vars), "trace_vars": list(self.trace_vars),
             "state_bits": self.state_bits}
        if self.shape is not None:
            d["shape"] = list(self.shape)
        return d


@dataclass(frozen=True, eq=False)
class Projection:
    src: str
    dst: str
    connectivity: str = "dense"
    weight_bits: int = 8
    plastic: str = "none"
    pairs: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # sparse
    kernel: tuple[int, ...] | None = None  # conv, pool: (kh, kw) or (k,)
    stride: tuple[int, ...] | None = None  # conv: 1; pool: the kernel
    padding: tuple[int, ...] | None = None  # 0
    dilation: tuple[int, ...] | None = None  # conv: 1
    groups: int = 1  # conv: in and out channels split into this many independent groups

    def __post_init__(self):
        if self.connectivity not in CONNECTIVITIES:
            raise SpecError(f"projection {self.name}: connectivity {self.connectivity!r} is not "
                            f"one of {', '.join(CONNECTIVITIES)}")
        if self.plastic not in LEARNING_RULES:
            raise SpecError(f"projection {self.name}: plastic {self.plastic!r} is not one of "
                            f"{', '.join(LEARNING_RULES)}")
        weightless = self.connectivity in WEIGHTLESS
        bits = 0 if weightless else int(self.weight_bits)
        if not weightless and not 1 <= bits <= 64:
            raise SpecError(f"projection {self.name}: weight_bits must be 1..64 (got "
                            f"{self.weight_bits})")
        object.__setattr__(self, "weight_bits", bits)
        if (self.pairs is None) != (self.connectivity != "sparse"):
            raise SpecError(f"projection {self.name}: `pairs` (pre, post) is given exactly "
                            "when connectivity is sparse")
        if self.pairs is not None:
            pre, post = (np.asarray(a, np.int64).ravel() for a in self.pairs)
            if len(pre) != len(post):
                raise SpecError(f"projection {self.name}: pairs need as many pre as post "
                                "indices")
            object.__setattr__(self, "pairs", (pre, post))
        self._geometry()
        object.__setattr__(self, "_expanded", None)

    def _geometry(self) -> None:
        """Normalise kernel, stride, padding, dilation to tuples of the map's rank."""
        keys = ("kernel", "stride", "padding", "dilation")
        if self.connectivity not in GEOMETRIC:
            given = [k for k in keys if getattr(self, k) is not None] + (
                ["groups"] if self.groups != 1 else [])
            if given:
                raise SpecError(f"projection {self.name}: {', '.join(given)} belong to "
                                f"conv and pool projections, not {self.connectivity}")
            return
        rank = 1 if self.connectivity == "conv1d" else 2
        if self.kernel is None:
            raise SpecError(f"projection {self.name}: {self.connectivity} needs a kernel")
        pool = self.connectivity.endswith("pool2d")
        default = {"kernel": None, "stride": None if pool else 1, "padding": 0,
                   "dilation": 1}
        for key in keys:
            v = getattr(self, key)
            v = default[key] if v is None else v
            if v is None:  # a pool's stride: its kernel
                v = getattr(self, "kernel")
            t = (int(v),) * rank if np.ndim(v) == 0 else tuple(int(x) for x in v)
            low = 0 if key == "padding" else 1
            if len(t) != rank or min(t) < low:
                raise SpecError(f"projection {self.name}: {key} {v} is not {rank} "
                                f"{'whole numbers >= 0' if low == 0 else 'sizes >= 1'}")
            object.__setattr__(self, key, t)
        if pool and self.dilation != (1,) * rank:
            raise SpecError(f"projection {self.name}: a pool has no dilation")
        if int(self.groups) < 1 or (pool and self.groups != 1):
            raise SpecError(f"projection {self.name}: groups must be >= 1 (pools: 1)")
        object.__setattr__(self, "groups", int(self.groups))

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"

    @property
    def stores_weights(self) -> bool:
        return self.connectivity not in WEIGHTLESS

    @property
    def connections(self) -> tuple[np.ndarray, np.ndarray]:
        """(pre, post) of every synapse, for the kinds that list them: sparse (its pairs),
        conv, pool and flatten (from the populations' shapes, once the spec has them)."""
        if self.pairs is not None:
            return self.pairs
        if self._expanded is None:
            raise SpecError(f"projection {self.name}: {self.connectivity} synapses are known "
                            "inside a NetworkSpec (from the populations' shapes)")
        return self._expanded[0], self._expanded[1]

    @property
    def kernel_index(self) -> np.ndarray:
        """Per synapse of `connections`, the index of its weight in the conv kernel
        (out_channels, in_channels / groups, *kernel), flattened."""
        if self.connectivity not in ("conv2d", "conv1d") or self._expanded is None:
            raise SpecError(f"projection {self.name}: only a conv projection in a spec has a "
                            "kernel")
        return self._expanded[2]

    def n_kernel_weights(self, in_channels: int, out_channels: int) -> int:
        return out_channels * (in_channels // self.groups) * int(np.prod(self.kernel))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Projection):
            return NotImplemented
        same_pairs = (self.pairs is None and other.pairs is None) or (
            self.pairs is not None and other.pairs is not None
            and all(np.array_equal(a, b) for a, b in zip(self.pairs, other.pairs)))
        return self._key() == other._key() and same_pairs

    def _key(self) -> tuple:
        return (self.src, self.dst, self.connectivity, self.weight_bits, self.plastic,
                self.kernel, self.stride, self.padding, self.dilation, self.groups)

    def __hash__(self) -> int:
        return hash(self._key())

    def to_dict(self) -> dict:
        d = {"src": self.src, "dst": self.dst, "connectivity": self.connectivity,
             "weight_bits": self.weight_bits, "plastic": self.plastic}
        if self.pairs is not None:
            d["pairs"] = [self.pairs[0].tolist(), self.pairs[1].tolist()]
        if self.connectivity in GEOMETRIC:
            d.update(kernel=list(self.kernel), stride=list(self.stride),
                     padding=list(self.padding), dilation=list(self.dilation),
                     groups=self.groups)
        return d


def index_bits(n_dst: int) -> int:
    """Bits of a target index in a stored synapse (sparse and expanded conv storage: a row
    per presynaptic neuron lists its targets)."""
    return max(int(np.ceil(np.log2(max(n_dst, 2)))), 1)


def _out_len(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _check_geometry(pr: Projection, src: Population, dst: Population) -> None:
    """The shapes a geometric or flatten projection needs, or a SpecError naming the
    dimension that does not fit."""
    if pr.connectivity == "flatten":
        if src.size != dst.size:
            raise SpecError(f"projection {pr.name}: flatten keeps the size ({src.size} vs "
                            f"{dst.size})")
        return
    rank = len(pr.kernel)
    for pop, role in ((src, "input"), (dst, "output")):
        if pop.shape is None or len(pop.shape) != rank + 1:
            want = "(channels, height, width)" if rank == 2 else "(channels, length)"
            raise SpecError(f"projection {pr.name}: {pr.connectivity} needs the {role} "
                            f"population {pop.name!r} to have a shape {want}, it has "
                            f"{pop.shape}")
    c_in, *space_in = src.shape
    c_out, *space_out = dst.shape
    if pr.connectivity.endswith("pool2d"):
        if c_in != c_out:
            raise SpecError(f"projection {pr.name}: a pool keeps the channels ({c_in} in, "
                            f"{c_out} out)")
    elif c_in % pr.groups or c_out % pr.groups:
        raise SpecError(f"projection {pr.name}: groups {pr.groups} must divide the input "
                        f"channels ({c_in}) and the output channels ({c_out})")
    dims = ("height", "width") if rank == 2 else ("length",)
    for i, dim in enumerate(dims):
        want = _out_len(space_in[i], pr.kernel[i], pr.stride[i], pr.padding[i], pr.dilation[i])
        if want != space_out[i]:
            raise SpecError(
                f"projection {pr.name}: {pr.connectivity} of input {dim} {space_in[i]} (kernel "
                f"{pr.kernel[i]}, stride {pr.stride[i]}, padding {pr.padding[i]}, dilation "
                f"{pr.dilation[i]}) gives output {dim} {want}, but {dst.name!r} has shape "
                f"{dst.shape} ({dim} {space_out[i]})")


def _expand(pr: Projection, src: Population, dst: Population):
    """(pre, post, kernel index) of every synapse of a geometric or flatten projection."""
    if pr.connectivity == "flatten":
        i = np.arange(src.size, dtype=np.int64)
        return i, i.copy(), np.zeros(src.size, np.int64)
    return expand_geometry(pr.connectivity, src.shape, dst.shape, pr.kernel, pr.stride,
                           pr.padding, pr.dilation, pr.groups)


def expand_geometry(connectivity: str, in_shape, out_shape, kernel, stride, padding,
                    dilation, groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every synapse of a conv or pool between maps of `in_shape` and `out_shape`
    ((channels, *space), flattened channel-major): (pre, post, kernel index), the kernel
    index into the flattened (out_channels, in_channels / groups, *kernel) weights (a pool:
    into (channels, 1, *kernel)). Synapses come in (output channel, input channel, kernel
    offset, output position) order."""
    rank = len(kernel)
    c_in, *sp_in = in_shape
    c_out, *sp_out = out_shape
    conv = connectivity.startswith("conv")
    cig, cog = c_in // groups, c_out // groups
    ci_local = np.arange(cig if conv else 1, dtype=np.int64)
    offs = np.stack(np.meshgrid(*[np.arange(k) for k in kernel], indexing="ij"),
                    -1).reshape(-1, rank)
    co_, cl_, o_ = (a.ravel() for a in np.meshgrid(np.arange(c_out, dtype=np.int64), ci_local,
                                                    np.arange(len(offs)), indexing="ij"))
    ci_ = (co_ // cog) * cig + cl_ if conv else co_
    kidx = (co_ * len(ci_local) + cl_) * len(offs) + o_
    pos = np.stack(np.meshgrid(*[np.arange(n) for n in sp_out], indexing="ij"),
                   -1).reshape(-1, rank)
    at = (pos[None, :, :] * np.array(stride) - np.array(padding)
          + offs[o_][:, None, :] * np.array(dilation))  # (taps, positions, rank)
    tap, p = np.nonzero(np.all((at >= 0) & (at < np.array(sp_in)), axis=-1))
    flat_in = np.ravel_multi_index(tuple(at[tap, p].T), sp_in)
    flat_out = np.ravel_multi_index(tuple(pos[p].T), sp_out)
    pre = ci_[tap] * int(np.prod(sp_in)) + flat_in
    post = co_[tap] * int(np.prod(sp_out)) + flat_out
    return pre.astype(np.int64), post.astype(np.int64), kidx[tap].astype(np.int64)


def conv_output_shape(in_shape, out_channels: int, kernel, stride, padding,
                      dilation) -> tuple[int, ...]:
    """The output map's shape (out_channels, *space) of a conv or pool."""
    return (int(out_channels), *(_out_len(n, k, s, p, d) for n, k, s, p, d in
                                 zip(in_shape[1:], kernel, stride, padding, dilation)))


@dataclass(frozen=True)
class NetworkSpec:
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...] = ()
    #: free-form description of where the spec came from (model name, parameters)
    info: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        pops = tuple(self.populations)
        projs = tuple(self.projections)
        object.__setattr__(self, "populations", pops)
        object.__setattr__(self, "projections", projs)
        names = [p.name for p in pops]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SpecError(f"population names must be unique: {', '.join(dup)}")
        size = {p.name: p.size for p in pops}
        seen = set()
        for pr in projs:
            for end in (pr.src, pr.dst):
                if end not in size:
                    raise SpecError(f"projection {pr.name}: no population named {end!r} "
                                    f"(populations: {', '.join(names)})")
            if pr.name in seen:
                raise SpecError(f"projection {pr.name} is given twice")
            seen.add(pr.name)
            if self.population(pr.dst).kind == "input":
                raise SpecError(f"projection {pr.name}: an input population receives nothing")
            if pr.connectivity in ("one_to_one", "all_but_self", "lateral") and (
                    size[pr.src] != size[pr.dst]):
                raise SpecError(f"projection {pr.name}: {pr.connectivity} needs populations of "
                                f"one size ({size[pr.src]} vs {size[pr.dst]})")
            if pr.pairs is not None:
                pre, post = pr.pairs
                if len(pre) and (pre.min() < 0 or pre.max() >= size[pr.src]
                                 or post.min() < 0 or post.max() >= size[pr.dst]):
                    raise SpecError(f"projection {pr.name}: a sparse pair is outside "
                                    f"{size[pr.src]} x {size[pr.dst]}")
            if pr.connectivity in GEOMETRIC + ("flatten",):
                src, dst = self.population(pr.src), self.population(pr.dst)
                _check_geometry(pr, src, dst)
                object.__setattr__(pr, "_expanded", _expand(pr, src, dst))

    # ------------------------------------------------------------------ queries
    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.populations)

    def n_synapses(self, pr: Projection) -> int:
        """Connections of a projection (a conv's every kernel tap that lands in the map)."""
        n_src, n_dst = self.population(pr.src).size, self.population(pr.dst).size
        if pr.connectivity == "dense":
            return n_src * n_dst
        if pr.connectivity in ("one_to_one", "flatten"):
            return n_src
        if pr.connectivity in ("all_but_self", "lateral"):
            return n_src * (n_dst - 1)
        return len(pr.connections[0])

    def n_weights(self, pr: Projection) -> int:
        """Weights the network holds for a projection: one per synapse, a conv's kernel
        once, none for a lateral scalar, a pool or a flatten."""
        if not pr.stores_weights:
            return 0
        if pr.connectivity in ("conv2d", "conv1d"):
            return pr.n_kernel_weights(self.population(pr.src).shape[0],
                                       self.population(pr.dst).shape[0])
        return self.n_synapses(pr)

    def weight_storage_bits(self, pr: Projection) -> int:
        """Bits the network's weights of a projection take: a sparse one's synapses each
        hold a target index beside the weight (`index_bits`)."""
        per = pr.weight_bits + (index_bits(self.population(pr.dst).size)
                                if pr.connectivity == "sparse" else 0)
        return self.n_weights(pr) * per

    @property
    def chip_populations(self) -> tuple[Population, ...]:
        """The populations whose neurons live on the chip's cores (not inputs)."""
        return tuple(p for p in self.populations if p.on_chip)

    def outgoing(self, name: str) -> tuple[Projection, ...]:
        return tuple(p for p in self.projections if p.src == name)

    def incoming(self, name: str) -> tuple[Projection, ...]:
        return tuple(p for p in self.projections if p.dst == name)

    # -------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict:
        return {"populations": [p.to_dict() for p in self.populations],
                "projections": [p.to_dict() for p in self.projections],
                "info": dict(self.info)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "NetworkSpec":
        try:
            pops = [Population(p["name"], p["size"], p.get("kind", "lif"),
                               tuple(p.get("state_vars", ("v",))), tuple(p.get("trace_vars", ())),
                               p.get("state_bits"),
                               tuple(p["shape"]) if p.get("shape") is not None else None)
                    for p in d["populations"]]
            projs = [Projection(p["src"], p["dst"], p.get("connectivity", "dense"),
                                p.get("weight_bits", 8), p.get("plastic", "none"),
                                tuple(np.asarray(a, np.int64) for a in p["pairs"])
                                if p.get("pairs") is not None else None,
                                **{k: tuple(p[k]) for k in ("kernel", "stride", "padding",
                                                            "dilation") if p.get(k) is not None},
                                groups=p.get("groups", 1))
                     for p in d.get("projections", ())]
        except (KeyError, TypeError) as exc:
            raise SpecError(f"not a network spec: missing or malformed {exc}") from None
        return cls(tuple(pops), tuple(projs), dict(d.get("info", {})))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "NetworkSpec":
        return cls.from_dict(json.loads(text))

    def with_info(self, **info) -> "NetworkSpec":
        return NetworkSpec(self.populations, self.projections, {**self.info, **info})



def spec_summary(spec: NetworkSpec) -> Iterable[str]:
    """One line per population and projection (for summaries and errors)."""
    for p in spec.populations:
        yield f"population {p.name}: {p.size} {p.kind}"
    for pr in spec.projections:
        yield (f"projection {pr.name}: {pr.connectivity}, {pr.weight_bits}-bit weights"
               + (f", plastic ({pr.plastic})" if pr.plastic != "none" else ""))
