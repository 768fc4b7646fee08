#!/usr/bin/env python
"""How often the sampled replay's 95 % interval holds the full replay's latency.

    python benchmarks/sample_coverage.py --samples 200 --neurons 40 --presentations 30 --seeds 400

A D&C run on the digits set (untrained beyond `--train` samples) records its inference
trace; the trace is replayed in full at `timestep` and at `event` on each chip (`edge`, and
the first 120 presentations on `loihi_like`), and for every seed the `presentations: n`
sample (accel_sim/chip/sampling.py) gives a ratio estimate and its interval from the two
full replays' per-presentation cycles. Prints one JSON object: per chip the presentations,
the coverage and the mean half-width of the interval relative to the latency.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from accel_sim import SpikeTrace, load_config, load_hardware, run_experiment
from accel_sim.chip import Chip
from accel_sim.chip.sampling import presentation_keys, ratio_interval
from accel_sim.machine import machine_info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--train", type=int, default=30)
    ap.add_argument("--neurons", type=int, default=40)
    ap.add_argument("--presentations", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=400)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, [f"data.train_samples={a.train}",
                                 f"data.test_samples={a.samples}",
                                 f"network.n_excitatory={a.neurons}", "run.progress=false",
                                 "run.checkpoint_every=0", "hardware=edge",
                                 "energy=generic_45nm"])
        run_experiment(cfg, Path(tmp) / "run")
        trace = SpikeTrace.load(Path(tmp) / "run" / "trace_infer")
    res = {"benchmark": "sample_coverage", "samples": a.samples, "neurons": a.neurons,
           "sampled_presentations": a.presentations, "seeds": a.seeds,
           "machine": machine_info(), "chips": {}}
    for chip, part in (("edge", trace), ("loihi_like", trace.select(0, 120))):
        hw = load_hardware(chip)
        x, y = (np.array(Chip(hw, trace.spec, fid).replay(part, "infer").presentation_cycles,
                         float) for fid in ("timestep", "event"))
        held, widths = 0, []
        for seed in range(a.seeds):
            keys = presentation_keys(seed, "infer", 0, len(x))
            pos = np.sort(np.argsort(keys, kind="stable")[:a.presentations])
            lo, hi = ratio_interval(y[pos], x[pos], x.sum(), len(x))["interval"]
            held += lo <= y.sum() <= hi
            widths.append((hi - lo) / 2 / y.sum())
        res["chips"][chip] = {"presentations": len(x), "coverage": held / a.seeds,
                              "mean_half_width_pct": 100 * float(np.mean(widths))}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
