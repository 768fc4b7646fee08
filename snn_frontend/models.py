"""The frontend's network families as NetworkSpecs (the graph the chip sees)."""
from __future__ import annotations

from .spec import NetworkSpec, Population, Projection

__all__ = ["dc_family_spec", "surrogate_spec", "hidden_names"]


def dc_family_spec(n_in: int, n_exc: int, lateral: bool, weight_bits: int,
                   state_bits: int | None = None, info: dict | None = None) -> NetworkSpec:
    """The Diehl & Cook family (D&C, FSpiNN, SpikeDyn, ASP) as a graph: inputs ->
    excitatory (dense, STDP); then either an inhibitory population (exc -> inh one-to-one,
    inh -> exc all-but-self) or direct lateral inhibition (exc -> exc, one scalar
    strength). Projections are listed in the order a core stores them (input rows, then
    the inhibition, then exc -> inh)."""
    pops = [Population("input", n_in, "input", state_vars=(), trace_vars=("pre",)),
            Population("exc", n_exc, "adaptive_lif",
                       state_vars=("v", "ge", "gi", "theta", "refractory", "lockout"),
                       trace_vars=("post1", "post2"), state_bits=state_bits)]
    projs = [Projection("input", "exc", "dense", weight_bits, "stdp")]
    if lateral:
        projs.append(Projection("exc", "exc", "lateral"))
    else:
        pops.append(Population("inh", n_exc, "conductance_lif",
                               state_vars=("v", "ge", "refractory"), state_bits=state_bits))
        projs += [Projection("inh", "exc", "all_but_self", weight_bits),
                  Projection("exc", "inh", "one_to_one", weight_bits)]
    return NetworkSpec(tuple(pops), tuple(projs), info or {})


def hidden_names(n_hidden: int) -> tuple[str, ...]:
    """Population names of the surrogate network's hidden layers: hidden_1, hidden_2, ..."""
    return tuple(f"hidden_{i + 1}" for i in range(n_hidden))


def surrogate_spec(n_in: int, hidden: tuple[int, ...], n_out: int,
                   info: dict | None = None) -> NetworkSpec:
    """The surrogate-gradient network (Perez-Nieves & Goodman 2021) as a graph: input ->
    hidden_1 -> ... -> readout, dense float32 projections trained by BPTT; the hidden
    layers are current-based LIF neurons (membrane v), the readout a leaky integrator."""
    names = hidden_names(len(hidden))
    pops = [Population("input", n_in, "input", state_vars=())]
    pops += [Population(n, size, "lif", state_vars=("v",)) for n, size in zip(names, hidden)]
    pops.append(Population("readout", n_out, "readout", state_vars=("o",)))
    chain = ("input", *names, "readout")
    projs = [Projection(a, b, "dense", 32, "bptt") for a, b in zip(chain[:-1], chain[1:])]
    return NetworkSpec(tuple(pops), tuple(projs), info or {})
