"""Our chip model next to SANA-FE 2.2 (pip `sanafe`) on the same network, spikes and
placement: the harness of benchmarks/vs_sanafe.py and of the parity tests.

A workload is layers of SANA-FE's `loihi_lif` neurons (`Layer`: threshold, leak, reset,
an optional bias per neuron and a map shape), optionally fed by a raster of input spikes,
connected by weight matrices (dense when every weight is non-zero, else sparse) or by
SANA-FE's convolutions (`Conv`: no padding, its kernel layout), and a placement. It is
built in SANA-FE on its Loihi architecture (`sanafe/examples/loihi.yaml`, `detailed`
timing; `run_sanafe`), each projection on the synapse unit of its kind (dense, sparse,
conv), and in ours (`ours`): the same network as a `NetworkSpec`, run by our frontend
with SANA-FE's neuron (`snn_frontend.sanafe_lif`: its spikes and updated neurons, the
`:active` streams), replayed on chip `loihi_sanafe` and priced with `sanafe_loihi`.
`dvs_gesture` is SANA-FE's own DVS-gesture network from its package.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from snn_frontend.sanafe_lif import SanafeLif, run_sanafe_lif
from snn_frontend.spec import NetworkSpec, Population, Projection

from .api import load_energy_table, load_hardware, price
from .chip import Chip

__all__ = ["Layer", "Conv", "workloads", "small_conv", "dvs_gesture", "run_sanafe", "network",
           "ours", "our_core"]

TILE_W, TILE_H, PER_TILE = 8, 4, 4  # SANA-FE's Loihi: 8 x 4 tiles of 4 cores
SYNAPSE_UNITS = ("synop", "synop_sparse", "synop_conv")  # our core actions of its units


@dataclass(frozen=True)
class Layer:
    """A layer of loihi_lif neurons (SANA-FE's `leaky_integrate_fire`)."""

    name: str
    size: int
    threshold: float
    leak_decay: float = 1.0
    reset: float = 0.0
    bias: np.ndarray | None = None  # (size,) added every step
    shape: tuple[int, int, int] | None = None  # (channels, height, width), channel-major


@dataclass(frozen=True)
class Conv:
    """SANA-FE's conv2d: no padding, `kernel` (kh, kw, in, out) as it indexes its filter."""

    kernel: np.ndarray
    stride: int = 1


# ----------------------------------------------------------------------- workloads
def workloads(seed: int = 0) -> dict[str, dict]:
    """name -> {steps, raster (steps, n_in) or None, layers [Layer], projections [(src,
    dst, W (n_src, n_dst) or Conv)], cores {layer: our core index per neuron}}; inputs
    sit on tile 0 in both simulators."""
    rng = np.random.default_rng(seed)
    out = {}
    T = 20
    raster = rng.random((T, 64)) < 0.2
    w = rng.uniform(0, 1, (64, 100))
    # tiles (x, y) -> our core index: tile y * 8 + x, 4 cores each
    slots = [(1, 0, 0), (1, 0, 1), (2, 0, 0), (2, 0, 3), (5, 0, 2), (5, 0, 3)]
    hid = np.array([4 * (y * TILE_W + x) + c for x, y, c in slots])[(np.arange(100) * 6) // 100]
    hidden = [Layer("hidden", 100, 16.0, 0.8)]
    out["ff"] = dict(steps=T, raster=raster, layers=hidden,
                     projections=[("input", "hidden", w)], cores={"hidden": hid})
    inh = -0.5 * rng.uniform(0, 1, (100, 100)) * (rng.random((100, 100)) < 0.1)
    np.fill_diagonal(inh, 0)
    out["recurrent"] = dict(steps=T, raster=raster, layers=hidden,
                            projections=[("input", "hidden", w), ("hidden", "hidden", inh)],
                            cores={"hidden": hid})
    T = 50
    r2 = rng.random((T, 256)) < 0.05
    w1 = rng.uniform(0, 1, (256, 200)) * (rng.random((256, 200)) < 0.3)
    w2 = rng.uniform(0, 1, (200, 50)) * (rng.random((200, 50)) < 0.5)
    out["two_layer"] = dict(
        steps=T, raster=r2, layers=[Layer("h1", 200, 3.0, 0.9), Layer("h2", 50, 2.0, 0.9)],
        projections=[("input", "h1", w1), ("h1", "h2", w2)],
        cores={"h1": 4 + (np.arange(200) * 40) // 200, "h2": 100 + (np.arange(50) * 8) // 50})
    T = 30
    r3 = rng.random((T, 400)) < 0.1
    w3 = rng.uniform(0, 0.6, (400, 400))
    out["wide"] = dict(steps=T, raster=r3, layers=[Layer("exc", 400, 12.0, 1.0)],
                       projections=[("input", "exc", w3)],
                       cores={"exc": 4 + (np.arange(400) * 120) // 400})
    out["conv"] = small_conv(rng)
    return out


def small_conv(rng) -> dict:
    """A bias-driven 1x9x9 map (an input layer of neurons, no input spikes) into a 3x3
    conv of stride 2 (4 channels of 4x4), then a dense readout of 5: SANA-FE's conv
    indexing, biases, a soft leak and a reset above zero, on 4 cores of 2 tiles."""
    bias = rng.integers(0, 40, 81) * (rng.random(81) < 0.7)
    k = rng.integers(-60, 120, (3, 3, 1, 4)).astype(np.float32)
    d = rng.integers(-30, 90, (64, 5)).astype(np.float32)
    layers = [Layer("pixels", 81, 100.0, bias=bias.astype(np.float64), shape=(1, 9, 9)),
              Layer("conv", 64, 150.0, leak_decay=0.95, reset=10.0, shape=(4, 4, 4)),
              Layer("out", 5, 120.0, leak_decay=0.9)]
    return dict(steps=40, raster=None, layers=layers,
                projections=[("pixels", "conv", Conv(k, 2)), ("conv", "out", d)],
                cores={"pixels": np.zeros(81, int), "conv": 1 + np.arange(64) // 32,
                       "out": np.full(5, our_core(4))})


def our_core(sanafe_index: int) -> int:
    """SANA-FE's k-th core of `arch.cores()` (tile by tile; tile id x * 4 + y) -> ours
    (tile y * 8 + x, 4 cores each)."""
    tile, off = divmod(int(sanafe_index), PER_TILE)
    x, y = divmod(tile, TILE_H)
    return PER_TILE * (y * TILE_W + x) + off


def dvs_gesture(steps: int = 1000) -> dict:
    """SANA-FE's DVS-gesture network (its package's `dvs_challenge.npz`, as its tutorial 5
    builds it): a 32x32 input layer driven by the event frame as biases, four conv layers
    (3x3; stride 2, then 1) and a dense readout of 11, each with its threshold and no
    leak; placed as the tutorial does, layer by layer on 1, 4, 16, 16, 4 and 1 cores in
    SANA-FE's core order."""
    import sanafe.tutorial

    with sanafe.tutorial.get_dvs_data() as f:
        npz = np.load(f)
        d = {k: npz[k] for k in npz.files}
    thr = [float(x) for x in d["thresholds"]]
    layers = [Layer("input", 1024, thr[0], bias=d["inputs"].astype(np.float64),
                    shape=(1, 32, 32))]
    projections = []
    c, h, w = 1, 32, 32
    for i, (key, stride) in enumerate([("conv1", 2), ("conv2", 1), ("conv3", 1), ("conv4", 1)]):
        k = d[key]
        kh, kw, _, co = k.shape
        c, h, w = co, (h - kh) // stride + 1, (w - kw) // stride + 1
        layers.append(Layer(f"conv{i + 1}", c * h * w, thr[i + 1], shape=(c, h, w)))
        projections.append((layers[-2].name, layers[-1].name, Conv(k, stride)))
    layers.append(Layer("dense", d["dense1"].shape[1], thr[5]))
    projections.append(("conv4", "dense", d["dense1"]))
    cores, k = {}, 0
    for layer, n_cores in zip(layers, (1, 4, 16, 16, 4, 1)):
        per = layer.size // n_cores  # the tutorial's split: the last core takes the rest
        idx = np.minimum(np.arange(layer.size) // per, n_cores - 1)
        cores[layer.name] = np.array([our_core(k + i) for i in range(n_cores)])[idx]
        k += n_cores
    return dict(steps=steps, raster=None, layers=layers, projections=projections,
                cores=cores)


# ----------------------------------------------------------------------- SANA-FE
def sanafe_core(core: int) -> tuple[int, int]:
    """Our core index -> SANA-FE (tile id, core offset); its tile id is x * 4 + y."""
    tile, off = divmod(int(core), PER_TILE)
    x, y = tile % TILE_W, tile // TILE_W
    return x * TILE_H + y, off


def run_sanafe(wl: dict, timing: bool = False) -> dict:
    """SANA-FE's run of a workload: its energy, latency, counts and spikes, and its wall
    time with the spike trace on; `timing`: also `untraced_wall_s`, the same simulation
    on a fresh chip without any trace (its fastest).

    It runs in a fresh interpreter, as a user's script would: SANA-FE's `detailed`
    latency depends on what ran before it in the process (the same workload came out 3-4 %
    slower after a few hundred of our tests, and repeatably the same in a new process)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(_run_sanafe_here, wl, timing).result()


def _run_sanafe_here(wl: dict, timing: bool) -> dict:
    """`run_sanafe` in this process."""
    import sanafe

    arch = sanafe.load_arch(str(files("sanafe.examples") / "loihi.yaml"))
    cores = arch.cores()
    net = sanafe.Network()
    raster, T = wl["raster"], wl["steps"]
    groups = {}
    if raster is not None:
        groups["input"] = net.create_neuron_group("input", raster.shape[1], log_spikes=True)
        for i in range(raster.shape[1]):  # each input neuron needs its own input unit
            groups["input"].neurons[i].set_attributes(
                soma_hw_name=f"loihi_inputs[{i}]",
                model_attributes={"spikes": [bool(b) for b in raster[:, i]]})
    shapes = {}
    for layer in wl["layers"]:
        g = groups[layer.name] = net.create_neuron_group(
            layer.name, layer.size, model_attributes={
                "threshold": layer.threshold, "reset": layer.reset,
                "leak_decay": layer.leak_decay},
            soma_hw_name="loihi_lif", log_spikes=True)
        shapes[layer.name] = layer.shape
        if layer.bias is not None:
            for i in np.flatnonzero(layer.bias):
                g.neurons[int(i)].set_attributes(model_attributes={"bias": float(layer.bias[i])})
    for src, dst, W in wl["projections"]:
        # a connection takes its destination's default synapse unit when it is made
        unit = ("loihi_conv_synapse" if isinstance(W, Conv) else
                "loihi_dense_synapse" if (W != 0).all() else "loihi_sparse_synapse")
        for nrn in groups[dst].neurons:
            nrn.set_attributes(default_synapse_hw_name=unit)
        if isinstance(W, Conv):
            c, h, w = shapes[src]
            kh, kw, _, co = W.kernel.shape
            groups[src].connect_neurons_conv2d(
                groups[dst], {"weight": [float(x) for x in W.kernel.ravel()]},
                w, h, c, kw, kh, co, W.stride, W.stride)
            continue
        ii, jj = np.nonzero(W)
        groups[src].connect_neurons_sparse(groups[dst], {"weight": [float(x) for x in W[ii, jj]]},
                                           [(int(a), int(b)) for a, b in zip(ii, jj)])
    if raster is not None:
        for i in range(raster.shape[1]):  # the input port: tile 0, core 0
            groups["input"].neurons[i].map_to_core(cores[0])
    for layer in wl["layers"]:
        for i, c in enumerate(wl["cores"][layer.name]):
            tile, off = sanafe_core(c)
            groups[layer.name].neurons[i].map_to_core(cores[PER_TILE * tile + off])
    chip = sanafe.SpikingChip(arch)
    chip.load(net)
    with contextlib.redirect_stdout(sys.stderr):  # it prints its progress on stdout
        t0 = time.perf_counter()
        res = chip.sim(T, timing_model="detailed", spike_trace=True)
        wall = time.perf_counter() - t0
        untraced = None
        if timing:
            again = sanafe.SpikingChip(arch)
            again.load(net)
            t0 = time.perf_counter()
            again.sim(T, timing_model="detailed")
            untraced = time.perf_counter() - t0
    spikes = {layer.name: np.zeros((T, layer.size), bool) for layer in wl["layers"]}
    for t, lst in enumerate(res["spike_trace"]):
        for a in lst:
            if a.group_name in spikes:
                spikes[a.group_name][t, a.neuron_offset] = True
    e = res["energy"]
    return {"energy_pj": {k: e[k] * 1e12 for k in ("total", "synapse", "soma", "network")},
            "latency_s": res["sim_time"], "messages": res["packets_sent"],
            "synaptic_events": res["spikes"], "neurons_updated": res["neurons_updated"],
            "neurons_fired": res["neurons_fired"], "wall_s": wall, "spikes": spikes,
            **({"untraced_wall_s": untraced} if timing else {})}


# ----------------------------------------------------------------------- ours
def network(wl: dict) -> tuple[NetworkSpec, dict, dict]:
    """The workload as our graph: the spec, the weights of each projection and the
    SANA-FE neurons of each layer."""
    pops = [Population("input", wl["raster"].shape[1], "input")] if wl["raster"] is not None else []
    pops += [Population(layer.name, layer.size, "lif", shape=layer.shape,
                        state_vars=("v", "bias") if layer.bias is not None else ("v",))
             for layer in wl["layers"]]
    projs, weights = [], {}
    for src, dst, W in wl["projections"]:
        if isinstance(W, Conv):
            kh, kw, _, _ = W.kernel.shape
            pr = Projection(src, dst, "conv2d", 8, kernel=(kh, kw), stride=W.stride)
            weights[pr.name] = W.kernel.transpose(3, 2, 0, 1)  # (out, in, kh, kw)
        elif (W != 0).all():
            pr = Projection(src, dst, "dense", 8)
            weights[pr.name] = W
        else:
            pre, post = np.nonzero(W)
            pr = Projection(src, dst, "sparse", 8, pairs=(pre, post))
            weights[pr.name] = W[pre, post]
        projs.append(pr)
    neurons = {layer.name: SanafeLif(layer.threshold, layer.reset, layer.leak_decay,
                                     0.0 if layer.bias is None else layer.bias)
               for layer in wl["layers"]}
    return NetworkSpec(tuple(pops), tuple(projs)), weights, neurons


def ours(wl: dict, fidelities: list[str]) -> dict:
    spec, weights, neurons = network(wl)
    t0 = time.perf_counter()
    trace, spikes = run_sanafe_lif(spec, weights, neurons, wl["steps"],
                                   {"input": wl["raster"]} if wl["raster"] is not None else None)
    res = {"spikes": {layer.name: spikes[layer.name] for layer in wl["layers"]},
           "frontend_wall_s": time.perf_counter() - t0}
    hw = load_hardware("loihi_sanafe")
    table = load_energy_table("sanafe_loihi")
    for fid in fidelities:
        t0 = time.perf_counter()
        chip = Chip(hw, spec, fid, wl["cores"])  # as SANA-FE's load: mapping, routes, tables
        built = time.perf_counter()
        r = chip.replay(trace, trace.meta.get("phase", "infer"))
        wall = time.perf_counter() - built
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
            "neurons_updated": r.counts.get("core.neuron_update_active", 0),
            "wall_s": wall, "build_s": built - t0}
    return res
