#!/usr/bin/env python
"""Latency of D&C inference with and without the per-step barrier (the `simpy` fidelity).

    python benchmarks/barrier_free.py --chip loihi_like --samples 5 --model RUN/model.npz

Replays the same MNIST inference presentations on the chip twice: with `sync.barrier:
true` (every step ends when the slowest core is done, plus the barrier) and `false`
(each core starts step t+1 when its own step t is done and every message it receives
for step t has arrived; the input port sends step t once every core has finished its
step-t neuron phase). Prints JSON: latency per sample each way, their ratio, and what
a step costs with the barrier (the barrier's share, the slowest core's share).
"""
from __future__ import annotations

import argparse
import json
import time

from dc_trace import dc_network, inference_trace

from accel_sim import load_hardware, simulate
from accel_sim.config import load_config
from accel_sim.machine import machine_info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chip", default="loihi_like")
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--model", help="model.npz of a finished run (trained weights and theta)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cfg = load_config(None, ["data.dataset=mnist", f"network.n_excitatory={a.neurons}",
                             "run.phases=[infer]"])
    trace = inference_trace(dc_network(cfg, a.model), a.samples)[0]
    res = {"benchmark": "barrier_free", "chip": a.chip, "neurons": a.neurons,
           "samples": a.samples, "machine": machine_info(),
           "time_steps_per_sample": trace.n_steps / a.samples,
           "input_spikes_per_sample": trace.total("input") / a.samples,
           "exc_spikes_per_sample": trace.total("exc") / a.samples}
    for barrier in (True, False):
        hw = load_hardware(a.chip, [f"sync.barrier={'true' if barrier else 'false'}"])
        t0 = time.perf_counter()
        r = simulate(trace, hw, fidelity="simpy")
        key = "barrier" if barrier else "no_barrier"
        res[f"{key}_latency_s_per_sample"] = r.cycles / (hw.clock_mhz * 1e6) / a.samples
        res[f"{key}_cycles_per_step"] = r.cycles / trace.n_steps
        res[f"{key}_wall_s"] = time.perf_counter() - t0
        if barrier:
            res["barrier_cycles"] = hw.sync.barrier_cycles
            res["barrier_share"] = hw.sync.barrier_cycles * trace.n_steps / r.cycles
    res["no_barrier_over_barrier"] = (res["no_barrier_latency_s_per_sample"]
                                      / res["barrier_latency_s_per_sample"])
    print(json.dumps(res, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
