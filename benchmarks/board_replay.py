#!/usr/bin/env python
"""How long D&C N=6,400 takes to build and replay on the 2,048-core `loihi_board`.

    python benchmarks/board_replay.py --samples 5 --json

Builds the chip (mapping, routes, tables) for the D&C graph at `--neurons` on `--chip`
and replays `--samples` synthetic training presentations at `--fidelity` (1,000 steps:
350 ms + 150 ms rest at 0.5 ms; seeded, MNIST-like: Poisson(3.3) input spikes in each
step of the 700 presented, ~2,300 per sample, none in the rest, and 120 excitatory
spikes: the N=6,400 run's training activity, 2,286 and 120 per sample), and prints the
build seconds, the replay milliseconds per sample, the spikes and the machine.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from accel_sim import load_hardware
from accel_sim.chip import Chip
from accel_sim.machine import machine_info
from snn_frontend.models import dc_family_spec
from snn_frontend.trace import TraceBuilder


def synthetic_trace(spec, n_in: int, n_exc: int, samples: int, steps: int, seed: int,
                    presented: int = 700, exc_spikes: int = 120):
    """Training presentations: Poisson(3.3) input spikes in each of the first `presented`
    steps (MNIST's ~2,300 per sample at pixel/4 Hz), `exc_spikes` excitatory spikes (and
    their inhibitory partners) at random presented steps."""
    rng = np.random.default_rng(seed)
    tb = TraceBuilder({"spec": spec.to_dict(), "learn": True})
    for s in range(samples):
        inputs = np.zeros(steps, np.int32)
        inputs[:presented] = rng.poisson(3.3, presented)
        exc = np.zeros(steps, np.int32)
        np.add.at(exc, rng.integers(0, presented, exc_spikes), 1)
        cnt = {"input": inputs, "exc": exc, "inh": exc.copy()}
        fired = rng.integers(0, n_exc, int(exc.sum())).astype(np.int32)
        idx = {"input": rng.integers(0, n_in, int(cnt["input"].sum())).astype(np.int32),
               "exc": fired, "inh": fired.copy()}
        tb.add(s, 0, True, steps, cnt, idx)
    return tb.build()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--neurons", type=int, default=6400)
    ap.add_argument("--chip", default="loihi_board")
    ap.add_argument("--fidelity", default="timestep")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    hw = load_hardware(a.chip)
    spec = dc_family_spec(784, a.neurons, False, 32)
    t = time.perf_counter()
    chip = Chip(hw, spec, a.fidelity)
    build_s = time.perf_counter() - t
    trace = synthetic_trace(spec, 784, a.neurons, a.samples, 1000, a.seed)
    t = time.perf_counter()
    r = chip.replay([trace], "train")
    replay_s = time.perf_counter() - t
    res = {"benchmark": "board_replay", "chip": a.chip, "cores": hw.n_cores,
           "neurons": a.neurons, "fidelity": a.fidelity, "samples": a.samples,
           "input_spikes_per_sample": r.counts["chip.input_spike"] / a.samples,
           "exc_spikes_per_sample": r.counts["core.spike_out"] / 2 / a.samples,
           "build_s": build_s, "replay_ms_per_sample": replay_s / a.samples * 1e3,
           "machine": machine_info()}
    print(json.dumps(res, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
