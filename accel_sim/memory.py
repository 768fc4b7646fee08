"""Memory footprint of a network spec: weights per projection, state per population.

Weights: what the network holds for every projection: one per synapse, a conv kernel
once, none for a lateral scalar, a pool or a flatten; a sparse projection's synapses each
hold a target index beside the weight (`index_bits`). D&C N=400 holds 784 x 400 + 400 +
400 x 399 = 473,600 weights (seeds.md 2.4). State: every state variable (a bias
included) and learning trace of every neuron (D&C: 8 per excitatory neuron, v, g_e, g_i,
theta, refractory and lockout counters and two post traces; 3 per inhibitory neuron; the
presynaptic trace of every input).
"""
from __future__ import annotations

from snn_frontend.spec import NetworkSpec

__all__ = ["network_memory"]


def network_memory(spec: NetworkSpec, state_bits: int) -> dict:
    """`state_bits`: the width of state variables whose population sets none."""
    weights, wbits, wbytes = {}, {}, {}
    for pr in spec.projections:
        weights[pr.name], wbits[pr.name] = spec.n_weights(pr), pr.weight_bits
        wbytes[pr.name] = -(-spec.weight_storage_bits(pr) // 8)
    state, sbytes = {}, {}
    for p in spec.populations:
        state[p.name] = p.size * (len(p.state_vars) + len(p.trace_vars))
        sbytes[p.name] = state[p.name] * (p.state_bits or state_bits) // 8
    return {
        "weight_bits": wbits, "state_bits": state_bits,
        "weights": weights, "weight_bytes": wbytes, "state_variables": state, "state_bytes": sbytes,
        "total_weights": sum(weights.values()),
        "total_bytes": sum(wbytes.values()) + sum(sbytes.values()),
    }
