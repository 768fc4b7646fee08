"""Memory footprint of the D&C network: weights and state, by population.

Weights (seeds.md 2.4): input->exc n_in*N (plastic), exc->inh N (one-to-one),
inh->exc N*(N-1) (all but self). State variables per neuron: excitatory v, ge,
gi, theta, refractory and lockout counters, post traces x2 (8); inhibitory v,
ge, refractory counter (3); input: the presynaptic trace (1).
"""
from __future__ import annotations

__all__ = ["dc_memory"]

EXC_STATE_VARS = ("v", "ge", "gi", "theta", "refractory", "lockout", "post1", "post2")
INH_STATE_VARS = ("v", "ge", "refractory")
INPUT_STATE_VARS = ("pre",)


def dc_memory(n_in: int, n_exc: int, weight_bits: int = 32, state_bits: int = 32,
              lateral: bool = False) -> dict:
    """With direct lateral inhibition there is no inhibitory population and the
    inhibition is one scalar strength (no weight memory, FSpiNN/SpikeDyn)."""
    if lateral:
        weights = {"input_exc": n_in * n_exc, "exc_inh": 0, "inh_exc": 0}
        state = {"exc": n_exc * len(EXC_STATE_VARS), "inh": 0,
                 "input": n_in * len(INPUT_STATE_VARS)}
    else:
        weights = {"input_exc": n_in * n_exc, "exc_inh": n_exc, "inh_exc": n_exc * (n_exc - 1)}
        state = {"exc": n_exc * len(EXC_STATE_VARS), "inh": n_exc * len(INH_STATE_VARS),
                 "input": n_in * len(INPUT_STATE_VARS)}
    wb = {k: v * weight_bits // 8 for k, v in weights.items()}
    sb = {k: v * state_bits // 8 for k, v in state.items()}
    return {
        "weight_bits": weight_bits, "state_bits": state_bits,
        "weights": weights, "weight_bytes": wb, "state_variables": state, "state_bytes": sb,
        "total_weights": sum(weights.values()),
        "total_bytes": sum(wb.values()) + sum(sb.values()),
    }
