#!/usr/bin/env python
"""Spike agreement of this project's NIR import with snnTorch, Norse and Sinabs.

    python benchmarks/nir_interop.py --framework-python PEERVENV/bin/python --json
    python benchmarks/nir_interop.py --from tests/fixtures/nir --json

`--framework-python` runs benchmarks/nir_frameworks.py and nir_conv_frameworks.py in a
venv with torch, snnTorch, Norse, Sinabs and nir: each framework builds a 20-16-4 network
(trained briefly) and a small convolutional one, exports them to NIR and records its own
spikes on fixed input spikes (`--fixtures DIR` keeps the files; tests/fixtures/nir holds
the ones the test suite checks). This project then imports each
file with the discretisation that matches the framework (docs/nir.md) and runs the same
input. Prints one JSON object: per framework and layer, the spikes of each side and
whether they agree at every sample, step and neuron.
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

from snn_frontend.nir_model import read_nir

ROOT = Path(__file__).resolve().parents[1]
#: how each framework's export maps onto NIR's continuous time (docs/nir.md)
FRAMEWORKS = {
    # snnTorch writes tau = dt / (1 - beta), r = tau / dt with dt = 1e-4 s and v_reset = 0,
    # and subtracts the threshold at the next step: euler at 0.1 ms, reset by subtraction
    "snntorch": {"dt_ms": 0.1, "lif": ("euler", "subtract")},
    # Norse writes tau = dt / tau_mem_inv (dt = 1 ms): tau in units of dt squared, so its own
    # step is dt_ms = 0.001; euler, reset to v_reset (0)
    "norse": {"dt_ms": 0.001, "lif": ("euler", "zero")},
    # the convolutional networks (nir_conv_frameworks.py)
    "snntorch_conv": {"dt_ms": 0.1, "lif": ("euler", "subtract")},
    "norse_conv": {"dt_ms": 0.001, "lif": ("euler", "zero")},
    # Sinabs writes IF neurons (threshold 1) and subtracts the threshold at a spike
    "sinabs_conv": {"dt_ms": 1.0, "if": ("euler", "subtract")},
}


def compare(folder: Path) -> dict:
    out = {}
    for fw, how in FRAMEWORKS.items():
        policy = {k: v for k, v in how.items() if k != "dt_ms"}
        model = read_nir(folder / f"{fw}.nir", how["dt_ms"] * 1e-3, policy)
        x = np.load(folder / f"{fw}_input.npy")
        ours, _ = model.forward(x)
        layers = {}
        for name, spikes in ours.items():
            ref = np.load(folder / f"{fw}_spikes_{name}.npy")
            layers[name] = {"ours": int(spikes.sum()), "theirs": int(ref.sum()),
                            "identical": bool(np.array_equal(spikes, ref)),
                            "steps_differing": int((spikes != ref).any(axis=2).sum())}
        out[fw] = {"dt_ms": how["dt_ms"], "policy": policy, "samples": int(x.shape[0]),
                   "steps": int(x.shape[1]), "layers": layers}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--framework-python",
                     help="python of a venv with snnTorch, Norse and Sinabs")
    src.add_argument("--from", dest="folder", help="a folder written by nir_frameworks.py")
    ap.add_argument("--fixtures", help="keep the exported files in this folder")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp)
        if args.framework_python:
            for script in ("nir_frameworks.py", "nir_conv_frameworks.py"):
                subprocess.run([args.framework_python, str(ROOT / "benchmarks" / script),
                                str(folder)], check=True, stdout=sys.stderr)
            if args.fixtures:
                shutil.copytree(folder, args.fixtures, dirs_exist_ok=True)
        result = {"benchmark": "nir_interop", "frameworks": compare(folder)}
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
