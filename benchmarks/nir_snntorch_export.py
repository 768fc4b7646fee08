#!/usr/bin/env python
"""Our NIR export in snnTorch's form, loaded and run by snnTorch's own `import_from_nir`.

    python benchmarks/nir_snntorch_export.py --framework-python PEERVENV/bin/python \\
        [--fixtures tests/fixtures/nir] --json

Trains a small surrogate-gradient network here (digits, 64-40-30-10, a few seconds),
exports it with `accel-sim export --format nir-snntorch`, runs the file in snnTorch
(benchmarks/snntorch_import_run.py, in the venv of `--framework-python`: snnTorch 1.0,
nir) on fixed input spikes, and imports the same file here with the settings the export
names (0.1 ms, euler, reset to zero). Prints one JSON object: per layer the spikes of
each side and whether they agree at every sample, step and neuron. `--fixtures` keeps
the file, the input and snnTorch's spikes (tests/fixtures/nir/ours_snntorch_form*: the
suite checks them without torch).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from accel_sim import load_config, run_experiment
from accel_sim.export import export_nir
from accel_sim.families.surrogate import SNNTORCH_DT_MS, SNNTORCH_REIMPORT_SETTINGS
from snn_frontend.nir_model import read_nir

ROOT = Path(__file__).resolve().parents[1]
NAME = "ours_snntorch_form"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--framework-python", required=True, help="python of a venv with snnTorch")
    ap.add_argument("--fixtures", help="keep the file, the input and snnTorch's spikes here")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = {"version": 1, "name": "snntorch_form",
               "data": {"dataset": "digits", "train_samples": 512, "test_samples": 64},
               "network": {"model": "surrogate", "hidden_sizes": [40, 30]},
               "learning": {"batch_size": 32, "epochs": 4}, "encoding": {"present_ms": 30},
               "run": {"progress": False}}
        (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
        stats = run_experiment(load_config(tmp / "cfg.yaml"), tmp / "run")
        path = export_nir(tmp / "run", tmp / f"{NAME}.nir", "nir-snntorch")
        x = np.random.default_rng(0).random((8, 30, 64)) < 0.3
        np.save(tmp / f"{NAME}_input.npy", x)
        subprocess.run([a.framework_python, str(ROOT / "benchmarks" / "snntorch_import_run.py"),
                        str(path), str(tmp / f"{NAME}_input.npy"), str(tmp / NAME)],
                       check=True, stdout=sys.stderr)
        s = SNNTORCH_REIMPORT_SETTINGS
        policy = {k: (v, s["nir_reset"].get(k)) for k, v in s["nir_integration"].items()}
        ours, _ = read_nir(path, SNNTORCH_DT_MS * 1e-3, policy).forward(x)
        layers = {}
        for name, spikes in ours.items():
            ref = np.load(tmp / f"{NAME}_spikes_{name}.npy")
            layers[name] = {"ours": int(spikes.sum()), "snntorch": int(ref.sum()),
                            "identical": bool(np.array_equal(spikes, ref))}
        if a.fixtures:
            for f in tmp.glob(f"{NAME}*"):
                shutil.copy(f, Path(a.fixtures) / f.name)
    print(json.dumps({"benchmark": "nir_snntorch_export", "trained_accuracy":
                      stats["accuracy"]["test"], "samples": int(x.shape[0]),
                      "steps": int(x.shape[1]), "layers": layers},
                     indent=None if a.json else 2))


if __name__ == "__main__":
    main()
