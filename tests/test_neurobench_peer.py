"""stats.json `neurobench` against the real NeuroBench 2.3 package on the same snnTorch CSNN
and N-MNIST test recordings (configs/nir_nmnist_csnn.yaml).

NeuroBench needs torch, which the test venv does not hold: the test runs NeuroBench's side
in the python named by ACCEL_SIM_PEER_PYTHON (a venv with `pip install
"neuro-accel-sim[neurobench]"`'s packages: torch, snnTorch, neurobench), through
benchmarks/vs_neurobench.py --peer, and is skipped without it.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from accel_sim import load_config, run_experiment

ROOT = Path(__file__).resolve().parents[1]
PEER = os.environ.get("ACCEL_SIM_PEER_PYTHON")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not PEER, reason="set ACCEL_SIM_PEER_PYTHON to a python "
                                                  "with torch, snnTorch and neurobench")]


def test_our_metrics_equal_neurobench_where_the_definitions_agree(tmp_path, monkeypatch):
    pytest.importorskip("nir")
    p = subprocess.run([PEER, str(ROOT / "benchmarks/vs_neurobench.py"), "--peer"],
                       capture_output=True, text=True, check=True, cwd=ROOT)
    theirs = json.loads(p.stdout.strip().splitlines()[-1])
    monkeypatch.chdir(ROOT)
    ours = run_experiment(load_config(ROOT / "configs/nir_nmnist_csnn.yaml"), tmp_path / "run",
                          progress=False)["neurobench"]
    assert ours["connection_sparsity"] == theirs["ConnectionSparsity"]
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=1e-12)
    ops, their_ops = ours["synaptic_operations"], theirs["SynapticOperations"]
    assert ops["effective_acs"] == pytest.approx(their_ops["Effective_ACs"], rel=1e-9)
    assert ops["effective_macs"] == their_ops["Effective_MACs"] == 0
    assert ops["dense"] == their_ops["Dense"]
    # snnTorch's Leaky modules keep 9 float32 scalar buffers that are not the network's
    assert theirs["Footprint"] - ours["footprint_bytes"] == 9 * 4
