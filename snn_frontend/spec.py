"""NetworkSpec: the network as data, written by the frontend and carried by the SpikeTrace.

A spec is a graph of populations (nodes) and projections (edges). It is all the chip
simulator knows about a network: mapping, counting, routing and timing iterate over it
and never name a model family. Every frontend model writes its spec
(`snn_frontend.models`), and a spec can be written by hand for any other network.

- `Population(name, size, kind, state_vars, trace_vars, state_bits)`: `kind` is `input`
  (a spike source outside the chip: its spikes enter at the chip's input port), `lif`,
  `conductance_lif`, `adaptive_lif` or `readout`; the variables it keeps per neuron size
  its state memory (`state_bits` None: the chip's state format).
- `Projection(src, dst, connectivity, weight_bits, plastic)`: `connectivity` is `dense`
  (all-to-all, a weight each), `one_to_one` (src i -> dst i), `all_but_self` (src i ->
  every dst j != i, a weight each), `lateral` (all-but-self with one scalar strength: no
  weight memory) or `sparse` (explicit (pre, post) pairs, `pairs`); `plastic` names the
  learning rule that writes it (`none`, `stdp`, `bptt`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

__all__ = ["NetworkSpec", "Population", "Projection", "SpecError", "POPULATION_KINDS",
           "CONNECTIVITIES", "LEARNING_RULES", "spec_summary"]

POPULATION_KINDS = ("input", "lif", "conductance_lif", "adaptive_lif", "readout")
CONNECTIVITIES = ("dense", "one_to_one", "all_but_self", "lateral", "sparse")
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

    def __post_init__(self):
        object.__setattr__(self, "state_vars", tuple(self.state_vars))
        object.__setattr__(self, "trace_vars", tuple(self.trace_vars))
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

    def to_dict(self) -> dict:
        return {"name": self.name, "size": self.size, "kind": self.kind,
                "state_vars": list(self.state_vars), "trace_vars": list(self.trace_vars),
                "state_bits": self.state_bits}


@dataclass(frozen=True, eq=False)
class Projection:
    src: str
    dst: str
    connectivity: str = "dense"
    weight_bits: int = 8
    plastic: str = "none"
    pairs: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # sparse

    def __post_init__(self):
        if self.connectivity not in CONNECTIVITIES:
            raise SpecError(f"projection {self.name}: connectivity {self.connectivity!r} is not "
                            f"one of {', '.join(CONNECTIVITIES)}")
        if self.plastic not in LEARNING_RULES:
            raise SpecError(f"projection {self.name}: plastic {self.plastic!r} is not one of "
                            f"{', '.join(LEARNING_RULES)}")
        bits = 0 if self.connectivity == "lateral" else int(self.weight_bits)
        if self.connectivity != "lateral" and not 1 <= bits <= 64:
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

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"

    @property
    def stores_weights(self) -> bool:
        return self.connectivity != "lateral"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Projection):
            return NotImplemented
        same_pairs = (self.pairs is None and other.pairs is None) or (
            self.pairs is not None and other.pairs is not None
            and all(np.array_equal(a, b) for a, b in zip(self.pairs, other.pairs)))
        return (self.src, self.dst, self.connectivity, self.weight_bits, self.plastic) == (
            other.src, other.dst, other.connectivity, other.weight_bits, other.plastic) and same_pairs

    def __hash__(self) -> int:
        return hash((self.src, self.dst, self.connectivity, self.weight_bits, self.plastic))

    def n_synapses(self, n_src: int, n_dst: int) -> int:
        """Weights this projection stores (0 for a lateral scalar)."""
        return {"dense": n_src * n_dst, "one_to_one": n_src, "all_but_self": n_src * (n_dst - 1),
                "lateral": 0, "sparse": 0 if self.pairs is None else len(self.pairs[0])
                }[self.connectivity]

    def to_dict(self) -> dict:
        d = {"src": self.src, "dst": self.dst, "connectivity": self.connectivity,
             "weight_bits": self.weight_bits, "plastic": self.plastic}
        if self.pairs is not None:
            d["pairs"] = [self.pairs[0].tolist(), self.pairs[1].tolist()]
        return d


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
                               p.get("state_bits")) for p in d["populations"]]
            projs = [Projection(p["src"], p["dst"], p.get("connectivity", "dense"),
                                p.get("weight_bits", 8), p.get("plastic", "none"),
                                tuple(np.asarray(a, np.int64) for a in p["pairs"])
                                if p.get("pairs") is not None else None)
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
