#!/usr/bin/env python
"""Import a 784-200-200-10 network from NIR and run it over the Fashion-MNIST test set with
chip pricing, end to end (the `accel-sim run` of a `network.model: nir` config).

    python benchmarks/nir_infer.py --from-run RUN_DIR [--samples 10000] --json

RUN_DIR is a trained surrogate-network run (configs/papers/ssgd_fmnist200_sparse.yaml); it
is exported to NIR first (`accel-sim export`), then imported with the settings that
reproduce it. Prints one JSON object: wall seconds of the whole run (reading the file,
the data, inference, the chip), its stages, the accuracy (next to the run's own), spikes
per sample per layer and the energy and latency per inference on the chip.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from accel_sim import load_config, run_experiment
from accel_sim.export import export_nir
from accel_sim.families.surrogate import REIMPORT_SETTINGS
from accel_sim.machine import machine_info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-run", required=True)
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--chip", default="edge")
    ap.add_argument("--energy", default="generic_45nm")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    run = Path(args.from_run)
    own = json.loads((run / "stats.json").read_text())["accuracy"].get("test")
    with tempfile.TemporaryDirectory() as tmp:
        path = export_nir(run, Path(tmp) / "model.nir")
        sets = ["network.model=nir", f"network.path={path}", "data.dataset=fashion_mnist",
                f"data.test_samples={args.samples}", "network.weights.kind=float32",
                f"network.nir_integration={json.dumps(REIMPORT_SETTINGS['nir_integration'])}",
                f"network.nir_reset={json.dumps(REIMPORT_SETTINGS['nir_reset'])}",
                f"hardware={args.chip}", f"energy={args.energy}"]
        t0 = time.perf_counter()
        stats = run_experiment(load_config(None, sets), Path(tmp) / "run", progress=False)
        wall = time.perf_counter() - t0
        timing = json.loads((Path(tmp) / "run" / "run.json").read_text())["timing_s"]
    infer = stats["hardware"]["phases"]["infer"]
    out = {"benchmark": "nir_infer", **machine_info(), "samples": args.samples,
           "wall_s": wall, "timing_s": timing, "accuracy": stats["accuracy"].get("test"),
           "accuracy_of_the_run_itself": own,
           "spikes_per_sample": stats["frontend"]["infer"]["per_sample"],
           "energy_per_inference_uj": infer["energy_per_sample_pj"] * 1e-6,
           "latency_per_inference_us": infer["latency_per_sample_s"] * 1e6,
           "chip": args.chip, "energy_table": args.energy}
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
