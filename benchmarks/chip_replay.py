#!/usr/bin/env python
"""Time the chip replay against the frontend on the same D&C MNIST inference samples.

    python benchmarks/chip_replay.py --neurons 400 --samples 200 --chip edge --json
    python benchmarks/chip_replay.py --chip loihi_like --fidelities simpy --simpy-samples 5
    python benchmarks/chip_replay.py --fidelities event,simpy --workers 2 --dask

Prints one JSON object: the frontend's seconds per sample (one thread, like a
replay), the replay's seconds per sample in each fidelity (`timestep`, `event`,
`simpy`; `simpy` on the first `--simpy-samples` only, it is slow), their ratios to the
frontend, each fidelity's latency per sample, and for `simpy` the SimPy events it
processed per second. `--model RUN_DIR/model.npz` uses trained weights (default: the
untrained initial weights, as the peers are timed). `--workers N` also replays each
fidelity sharded over N worker processes (run.chip_workers) and reports its seconds
per sample and speed-up over the serial replay (checked equal), after a first short
replay has started the workers and built their chips (as a run's first trace part does);
`--dask` does the same on a Dask LocalCluster of N workers on loopback, started after the
local pool is closed.
"""
from __future__ import annotations

import argparse
import json
import time

from dc_trace import dc_network, inference_trace

from accel_sim.chip import Chip
from accel_sim.config import load_config
from accel_sim.executors import DaskExecutor, LocalExecutor
from accel_sim.machine import machine_info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--chip", default="edge")
    ap.add_argument("--dt-ms", type=float, default=0.5)
    ap.add_argument("--model", help="model.npz of a finished run (trained weights and theta)")
    ap.add_argument("--fidelities", default="timestep,event,simpy")
    ap.add_argument("--simpy-samples", type=int, default=10)
    ap.add_argument("--workers", type=int, default=0, help="also time a sharded replay")
    ap.add_argument("--dask", action="store_true", help="and on a Dask LocalCluster")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cfg = load_config(None, ["data.dataset=mnist", f"network.n_excitatory={a.neurons}",
                             f"encoding.dt_ms={a.dt_ms}", f"hardware={a.chip}",
                             "energy=generic_45nm", "run.phases=[infer]"])
    net = dc_network(cfg, a.model)
    trace, counts, frontend_s = inference_trace(net, a.samples, warm_up=True)
    frontend_s /= a.samples
    spec = trace.spec
    short = trace.select(0, next((k for k, p in enumerate(trace) if p.sample >= a.simpy_samples),
                                 trace.n_presentations))
    res = {"benchmark": "chip_replay", "neurons": a.neurons, "samples": a.samples,
           "chip": a.chip, "machine": machine_info(), "frontend_s_per_sample": frontend_s,
           "presentations_per_sample": counts.presentations / a.samples,
           "input_spikes_per_sample": counts.input_spikes / a.samples,
           "exc_spikes_per_sample": counts.exc_spikes / a.samples}
    # each executor is started for its own timings and closed after them: an idle Dask
    # cluster's heartbeats beside the local pool's workers would slow them
    executors = {}
    if a.workers:
        executors["pool"] = lambda: LocalExecutor(a.workers)
        if a.dask:
            executors["dask"] = lambda: DaskExecutor(a.workers)
        res["workers"] = a.workers
    serial = {}
    for fid in a.fidelities.split(","):
        chip = Chip(cfg.hardware, spec, fid)
        tr, n = (short, short.n_samples) if fid == "simpy" else (trace, a.samples)
        t0 = time.perf_counter()
        r = chip.replay(tr, "infer")
        wall = time.perf_counter() - t0
        serial[fid] = chip, tr, n, r, wall
        res[f"{fid}_samples"] = n
        res[f"{fid}_s_per_sample"] = wall / n
        res[f"{fid}_ratio_to_frontend"] = wall / n / frontend_s
        res[f"{fid}_latency_cycles_per_sample"] = r.cycles / n
        if fid == "simpy":
            res["simpy_events_per_s"] = r.simpy_events / wall
            res["simpy_events_per_sample"] = r.simpy_events / n
            res["simpy_barrier"] = cfg.hardware.sync.barrier
    for kind, start in executors.items():
        ex = start()
        for fid, (chip, tr, n, r, wall) in serial.items():
            chip.replay(tr.select(0, 2), "infer", executor=ex)  # workers up, chips built
            t0 = time.perf_counter()
            sharded = chip.replay(tr, "infer", executor=ex)
            wall_sharded = time.perf_counter() - t0
            if (sharded.counts, sharded.cycles) != (r.counts, r.cycles):
                raise SystemExit(f"{fid} sharded on {kind} differs from the serial replay")
            res[f"{fid}_{kind}_s_per_sample"] = wall_sharded / n
            res[f"{fid}_{kind}_ratio_to_frontend"] = wall_sharded / n / frontend_s
            res[f"{fid}_{kind}_speedup"] = wall / wall_sharded
        ex.close()
    print(json.dumps(res, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
