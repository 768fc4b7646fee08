#!/usr/bin/env python
"""Our `stats.json -> neurobench` next to the real NeuroBench package on the same CSNN and
input spikes.

    ACCEL_SIM_DATA=../shared/data python benchmarks/vs_neurobench.py \
        --peer-python PEERVENV/bin/python --json

The network is configs/nir_nmnist_csnn.yaml's (snnTorch, exported to NIR); the input is
the 100 N-MNIST test recordings at 5 ms steps. Our side: `accel-sim run` of that config
(its `neurobench` section). NeuroBench's side (`--peer`, run in a venv with torch,
snnTorch and neurobench 2.3): the snnTorch modules with the NIR file's weights, wrapped
in `SNNTorchModel`, through `Benchmark` with Footprint, ConnectionSparsity,
ActivationSparsity and SynapticOperations. Prints one JSON object: both sides and the
differences (docs/nir.md explains each).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peer() -> dict:
    import torch
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from conv_infer import STEPS, rasters
    from train_nmnist_csnn import network
    import nir
    import numpy as np

    g = nir.read(str(ROOT / "tests/fixtures/nir/nmnist_csnn.nir"), type_check=False)
    net = network()
    with torch.no_grad():
        for name, node in g.nodes.items():
            if name.isdigit() and hasattr(node, "weight"):
                net[int(name)].weight.copy_(torch.as_tensor(np.asarray(node.weight)))
                net[int(name)].bias.copy_(torch.as_tensor(np.asarray(node.bias)))
    x, labels = rasters()
    data = torch.from_numpy(x.astype(np.float32)).reshape(len(x), STEPS, 1, 34, 34)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, torch.from_numpy(labels)), batch_size=len(x))
    bench = Benchmark(SNNTorchModel(net), loader, [], [],
                      [[Footprint, ConnectionSparsity],
                       [ActivationSparsity, SynapticOperations]])
    return {k: (v if not isinstance(v, dict) else dict(v)) for k, v in bench.run().items()}


def ours() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "accel_sim", "run",
                        str(ROOT / "configs/nir_nmnist_csnn.yaml"), "--out", f"{tmp}/run",
                        "--no-progress"], check=True, cwd=ROOT, capture_output=True)
        return json.loads(Path(f"{tmp}/run/stats.json").read_text())["neurobench"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", help="python of a venv with snnTorch and neurobench")
    ap.add_argument("--peer", action="store_true", help="(internal) NeuroBench's side")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.peer:
        print(json.dumps(peer(), default=float))
        return
    result = {"benchmark": "vs_neurobench", "network": "nmnist_csnn", "ours": ours()}
    if a.peer_python:
        p = subprocess.run([a.peer_python, __file__, "--peer"], capture_output=True, text=True,
                           check=True, cwd=ROOT)
        result["neurobench"] = json.loads(p.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
