#!/usr/bin/env python
"""Sampled simulation against the full replay on the same D&C MNIST inference trace.

    python benchmarks/chip_sample.py --chip edge --samples 500 --fraction 0.02 --json
    python benchmarks/chip_sample.py --chip loihi_like --barrier false --samples 200 --workers 2
    python benchmarks/chip_sample.py --chip loihi_like --samples 10000 --full-fidelity event --workers 2

The frontend runs the test images once (trained weights with `--model`); the trace is
replayed in full at `--fidelity` (default simpy; on `--workers` processes, sharded) and
sampled (`run.chip_sample: {fraction}` for seeds 0..`--seeds`-1, same fidelity, same
workers). Prints one JSON object: spikes and messages per sample, both wall times, the
full latency, and per seed the estimate, its 95 % interval and whether it holds the full
replay's latency. `--full-fidelity event` replays the full trace at `event` instead, for a
barrier-synchronised chip where `event` equals `simpy` cycle for cycle (checked here on the
first `--check` presentations): the full test set at `simpy` takes hours; its wall time is
then estimated from the per-presentation time of that check.
"""
from __future__ import annotations

import argparse
import json
import time

from dc_trace import dc_network, inference_trace

from accel_sim.chip import Chip
from accel_sim.config import load_config
from accel_sim.config.schema import ChipSample
from accel_sim.executors import LocalExecutor
from accel_sim.machine import machine_info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--chip", default="edge")
    ap.add_argument("--barrier", choices=["true", "false"], default="true")
    ap.add_argument("--fidelity", default="simpy")
    ap.add_argument("--full-fidelity", help="fidelity of the full replay (default --fidelity)")
    ap.add_argument("--check", type=int, default=20,
                    help="presentations on which --full-fidelity is checked equal to --fidelity")
    ap.add_argument("--fraction", type=float, default=0.02)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--model", help="model.npz of a finished run (trained weights and theta)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cfg = load_config(None, ["data.dataset=mnist", f"network.n_excitatory={a.neurons}",
                             f"hardware={a.chip}", f"hardware.sync.barrier={a.barrier}",
                             "energy=generic_45nm", "run.phases=[infer]",
                             f"run.fidelity={a.fidelity}"])
    trace, counts, frontend_s = inference_trace(dc_network(cfg, a.model), a.samples)
    spec = trace.spec
    ex = LocalExecutor(a.workers) if a.workers else None
    full_fidelity = a.full_fidelity or a.fidelity
    chip = Chip(cfg.hardware, spec, full_fidelity)
    if ex is not None:
        chip.replay(trace.select(0, 2), "infer", executor=ex)  # workers up
    t0 = time.perf_counter()
    full = chip.replay(trace, "infer", executor=ex)
    full_s = time.perf_counter() - t0
    estimate = {}
    if full_fidelity != a.fidelity:
        if not cfg.hardware.sync.barrier:
            raise SystemExit("without a barrier only simpy models the chip: no --full-fidelity")
        head = trace.select(0, min(a.check, trace.n_presentations))
        t0 = time.perf_counter()
        detailed = Chip(cfg.hardware, spec, a.fidelity).replay(head, "infer")
        per_presentation_s = (time.perf_counter() - t0) / head.n_presentations
        same = Chip(cfg.hardware, spec, full_fidelity).replay(head, "infer")
        if detailed.presentation_cycles != same.presentation_cycles:
            raise SystemExit(f"{full_fidelity} differs from {a.fidelity} on the first presentations")
        estimate = {"checked_presentations": head.n_presentations,
                    f"{a.fidelity}_s_per_presentation": per_presentation_s,
                    f"full_{a.fidelity}_s_estimated":
                        per_presentation_s * trace.n_presentations / max(a.workers, 1)}
    res = {"benchmark": "chip_sample", "chip": a.chip, "barrier": a.barrier == "true",
           "fidelity": a.fidelity, "neurons": a.neurons, "samples": a.samples,
           "presentations": trace.n_presentations, "workers": a.workers,
           "machine": machine_info(), "frontend_s": frontend_s,
           "input_spikes_per_sample": counts.input_spikes / a.samples,
           "exc_spikes_per_sample": counts.exc_spikes / a.samples,
           "messages_per_sample": full.counts.get("router.inject", 0) / a.samples,
           "full_fidelity": full_fidelity, "full_s": full_s, **estimate,
           "full_latency_cycles": full.cycles, "fraction": a.fraction, "seeds": []}
    for seed in range(a.seeds):
        t0 = time.perf_counter()
        r = Chip(cfg.hardware, spec, a.fidelity).replay(
            trace, "infer", executor=ex, sample=ChipSample(fraction=a.fraction, seed=seed))
        wall = time.perf_counter() - t0
        lo, hi = r.sampled["latency_cycles_interval"]
        if r.counts != full.counts:
            raise SystemExit("the sampled replay's counts differ from the full replay's")
        res["seeds"].append({"seed": seed, "wall_s": wall, "sampled": r.sampled["presentations"],
                             "estimate_cycles": r.cycles, "interval": [lo, hi],
                             "error_pct": (r.cycles / full.cycles - 1) * 100,
                             "holds_full": lo <= full.cycles <= hi,
                             "speedup": estimate.get(f"full_{a.fidelity}_s_estimated",
                                                     full_s) / wall})
    if ex is not None:
        ex.close()
    res["held"] = sum(s["holds_full"] for s in res["seeds"])
    print(json.dumps(res, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
