"""Our chip model next to SANA-FE 2.2 (pip `sanafe`) on the same network, spikes and
placement: the harness of benchmarks/vs_sanafe.py and of the parity test.

For each workload the same network (a raster of input spikes into leaky integrate-and-fire
layers with SANA-FE's `loihi_lif` dynamics) is built in SANA-FE on its Loihi architecture
(`sanafe/examples/loihi.yaml`, `detailed` timing; `run_sanafe`) and in ours on chip
`loihi_sanafe` priced with `sanafe_loihi` (`ours`). Our side simulates the LIF layers
itself (`loihi_lif`: SANA-FE's rules: leak, then truncation to 1/64, input added, fire
when v > threshold, hard reset; "updated" when |v| > 0 before the leak or input arrived),
and the trace carries which neurons were updated (their `active_stream`).
"""
from __future__ import annotations

import contextlib
import sys
import time
from importlib.resources import files

import numpy as np

from snn_frontend.spec import NetworkSpec, Population, Projection
from snn_frontend.trace import SpikeTrace, active_stream

from .api import load_energy_table, load_hardware, price, simulate

__all__ = ["workloads", "run_sanafe", "loihi_lif", "ours"]

TILE_W, TILE_H, PER_TILE = 8, 4, 4  # SANA-FE's Loihi: 8 x 4 tiles of 4 cores
SYNAPSE_UNITS = ("synop", "synop_sparse", "synop_conv")  # our core actions of its units


# ----------------------------------------------------------------------- workloads
def workloads(seed: int = 0) -> dict[str, dict]:
    """name -> {raster, layers [(name, size, threshold, leak)], projections [(src, dst, W)],
    cores {layer: our core index per neuron}}; inputs sit on tile 0 in both simulators."""
    rng = np.random.default_rng(seed)
    out = {}
    T = 20
    raster = rng.random((T, 64)) < 0.2
    w = rng.uniform(0, 1, (64, 100))
    # tiles (x, y) -> our core index: tile y * 8 + x, 4 cores each
    slots = [(1, 0, 0), (1, 0, 1), (2, 0, 0), (2, 0, 3), (5, 0, 2), (5, 0, 3)]
    hid = np.array([4 * (y * TILE_W + x) + c for x, y, c in slots])[(np.arange(100) * 6) // 100]
    out["ff"] = dict(raster=raster, layers=[("hidden", 100, 16.0, 0.8)],
                     projections=[("input", "hidden", w)], cores={"hidden": hid})
    inh = -0.5 * rng.uniform(0, 1, (100, 100)) * (rng.random((100, 100)) < 0.1)
    np.fill_diagonal(inh, 0)
    out["recurrent"] = dict(raster=raster, layers=[("hidden", 100, 16.0, 0.8)],
                            projections=[("input", "hidden", w), ("hidden", "hidden", inh)],
                            cores={"hidden": hid})
    T = 50
    r2 = rng.random((T, 256)) < 0.05
    w1 = rng.uniform(0, 1, (256, 200)) * (rng.random((256, 200)) < 0.3)
    w2 = rng.uniform(0, 1, (200, 50)) * (rng.random((200, 50)) < 0.5)
    out["two_layer"] = dict(
        raster=r2, layers=[("h1", 200, 3.0, 0.9), ("h2", 50, 2.0, 0.9)],
        projections=[("input", "h1", w1), ("h1", "h2", w2)],
        cores={"h1": 4 + (np.arange(200) * 40) // 200, "h2": 100 + (np.arange(50) * 8) // 50})
    T = 30
    r3 = rng.random((T, 400)) < 0.1
    w3 = rng.uniform(0, 0.6, (400, 400))
    out["wide"] = dict(raster=r3, layers=[("exc", 400, 12.0, 1.0)],
                       projections=[("input", "exc", w3)],
                       cores={"exc": 4 + (np.arange(400) * 120) // 400})
    return out


# ----------------------------------------------------------------------- SANA-FE
def sanafe_core(core: int) -> tuple[int, int]:
    """Our core index -> SANA-FE (tile id, core offset); its tile id is x * 4 + y."""
    tile, off = divmod(int(core), PER_TILE)
    x, y = tile % TILE_W, tile // TILE_W
    return x * TILE_H + y, off


def run_sanafe(wl: dict) -> dict:
    import sanafe

    arch = sanafe.load_arch(str(files("sanafe.examples") / "loihi.yaml"))
    cores = arch.cores()
    net = sanafe.Network()
    raster = wl["raster"]
    T, n_in = raster.shape
    groups = {"input": net.create_neuron_group("input", n_in, log_spikes=True)}
    for i in range(n_in):  # each input neuron needs its own input unit on its core
        groups["input"].neurons[i].set_attributes(
            soma_hw_name=f"loihi_inputs[{i}]",
            model_attributes={"spikes": [bool(b) for b in raster[:, i]]})
    for name, size, thr, leak in wl["layers"]:
        groups[name] = net.create_neuron_group(
            name, size, model_attributes={"threshold": thr, "reset": 0.0, "leak_decay": leak},
            soma_hw_name="loihi_lif", log_spikes=True)
    for src, dst, W in wl["projections"]:
        # a connection takes its destination's default synapse unit when it is made
        unit = "loihi_dense_synapse" if (W != 0).all() else "loihi_sparse_synapse"
        for nrn in groups[dst].neurons:
            nrn.set_attributes(default_synapse_hw_name=unit)
        ii, jj = np.nonzero(W)
        groups[src].connect_neurons_sparse(groups[dst], {"weight": [float(x) for x in W[ii, jj]]},
                                           [(int(a), int(b)) for a, b in zip(ii, jj)])
    for i in range(n_in):  # the input port: tile 0, core 0
        groups["input"].neurons[i].map_to_core(cores[0])
    for name, size, _, _ in wl["layers"]:
        for i, c in enumerate(wl["cores"][name]):
            tile, off = sanafe_core(c)
            groups[name].neurons[i].map_to_core(cores[PER_TILE * tile + off])
    chip = sanafe.SpikingChip(arch)
    chip.load(net)
    with contextlib.redirect_stdout(sys.stderr):  # it prints its progress on stdout
        t0 = time.perf_counter()
        res = chip.sim(T, timing_model="detailed", spike_trace=True, perf_trace=True)
        wall = time.perf_counter() - t0
    spikes = {name: np.zeros((T, size), bool) for name, size, _, _ in wl["layers"]}
    for t, lst in enumerate(res["spike_trace"]):
        for a in lst:
            if a.group_name in spikes:
                spikes[a.group_name][t, a.neuron_offset] = True
    e = res["energy"]
    return {"energy_pj": {k: e[k] * 1e12 for k in ("total", "synapse", "soma", "network")},
            "latency_s": res["sim_time"], "messages": res["packets_sent"],
            "synaptic_events": res["spikes"], "wall_s": wall, "spikes": spikes}


# ----------------------------------------------------------------------- ours
def loihi_lif(wl: dict) -> tuple[dict, dict]:
    """SANA-FE's loihi_lif dynamics: spikes and updated neurons of every layer per step."""
    raster = wl["raster"]
    T = raster.shape[0]
    sizes = {"input": raster.shape[1], **{n: s for n, s, _, _ in wl["layers"]}}
    v = {n: np.zeros(s) for n, s, _, _ in wl["layers"]}
    spikes = {"input": raster, **{n: np.zeros((T, s), bool) for n, s, _, _ in wl["layers"]}}
    active = {n: np.zeros((T, s), bool) for n, s, _, _ in wl["layers"]}
    for t in range(T):
        for name, size, thr, leak in wl["layers"]:
            cur = np.zeros(size)
            hit = np.zeros(size, bool)
            if t:
                for src, dst, W in wl["projections"]:
                    if dst == name:
                        pre = spikes[src][t - 1]
                        cur += pre @ W
                        hit |= (W[pre] != 0).any(axis=0)
            x = v[name]
            active[name][t] = (np.abs(x) > 0) | hit
            if t:
                x = x * leak
            x = np.trunc(x * 64.0) / 64.0
            x = x + cur
            fired = x > thr
            x[fired] = 0.0
            v[name] = x
            spikes[name][t] = fired
            active[name][t] |= fired
    del sizes
    return spikes, active


def ours(wl: dict, fidelities: list[str]) -> dict:
    spikes, active = loihi_lif(wl)
    pops = [Population("input", wl["raster"].shape[1], "input")]
    pops += [Population(n, s, "lif") for n, s, _, _ in wl["layers"]]
    projs = []
    for src, dst, W in wl["projections"]:
        if (W != 0).all():
            projs.append(Projection(src, dst, "dense", 8))
        else:
            pre, post = np.nonzero(W)
            projs.append(Projection(src, dst, "sparse", 8, pairs=(pre, post)))
    spec = NetworkSpec(tuple(pops), tuple(projs))
    trace = SpikeTrace.from_rasters(spec, spikes,
                                    streams={active_stream(n): a for n, a in active.items()})
    hw = load_hardware("loihi_sanafe")
    table = load_energy_table("sanafe_loihi")
    res = {"spikes": spikes}
    for fid in fidelities:
        t0 = time.perf_counter()
        r = simulate(trace, hw, fidelity=fid, placement=wl["cores"])
        wall = time.perf_counter() - t0
        cost = price(r, table, hw)
        e = {k: r.counts.get(k, 0) * cost.pj_per_action.get(k, 0.0) for k in r.counts}
        res[fid] = {
            "energy_pj": {
                "total": cost.energy_pj.total,
                "synapse": sum(e.get(f"core.{u}", 0.0) for u in SYNAPSE_UNITS),
                "soma": sum(e.get(f"core.{a}", 0.0) for a in
                            ("neuron_update_active", "neuron_update_idle", "spike_out")),
                "network": cost.energy_pj.by_component["router"]},
            "latency_s": cost.latency_s, "messages": r.counts.get("router.inject", 0),
            "synaptic_events": sum(r.counts.get(f"core.{u}", 0) for u in SYNAPSE_UNITS),
            "wall_s": wall}
    return res
