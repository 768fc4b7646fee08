"""BPTT training on the chip: a hand-counted trace, and the chip's counts equal to the
kernels' own operation counts when it replays every training batch (dense and sparse)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from accel_sim import SpikeTrace, load_hardware, run_experiment, simulate
from accel_sim.config import load_config
from snn_frontend.models import surrogate_spec
from snn_frontend.trace import grad_stream, optimizer_stream


def _trace(sparse: bool) -> SpikeTrace:
    """input (2) -> hidden_1 (2) -> readout (1), 4 steps: input spikes (0, 0) and (1, 1),
    hidden spike (1, 0); sparse gradient set of hidden_1: (1, 1) and (2, 0)."""
    spec = surrogate_spec(2, (2,), 1)
    T = 4
    x = np.zeros((T, 2), bool)
    x[0, 0] = x[1, 1] = True
    h = np.zeros((T, 2), bool)
    h[1, 0] = True
    streams = {}
    if sparse:
        g = np.zeros((T, 2), bool)
        g[1, 1] = g[2, 0] = True
        streams[grad_stream("hidden_1")] = g
    for pr in spec.projections:
        opt = np.zeros((T, 1), bool)
        opt[-1, 0] = True
        streams[optimizer_stream(pr.name)] = opt
    return SpikeTrace.from_rasters(spec, {"input": x, "hidden_1": h}, streams=streams,
                                   learn=True)


def test_hand_counted_sparse_backward():
    r = simulate(_trace(True), load_hardware("edge"))
    c = r.counts
    assert c["core.surrogate_eval"] == 2  # the two gradient entries
    # input -> hidden_1: entry (1, 1) has 1 input spike before step 1, (2, 0) has 2
    assert c["core.weight_grad_mac"] == 3
    # hidden_1 -> readout: the hidden spike at step 1 adds the readout gradient (1 weight)
    assert c["core.weight_grad_add"] == 1
    # the readout's gradient reaches both gradient entries (steps <= T - 2): 1 MAC each
    assert c["core.input_grad_mac"] == 2
    assert c["core.optimizer_op"] == 2 * 2 + 2 * 1  # one Adam update per weight


def test_hand_counted_dense_backward():
    c = simulate(_trace(False), load_hardware("edge")).counts
    T = 4
    assert c["core.surrogate_eval"] == (T - 1) * 2  # every (step >= 1, neuron)
    assert c["core.weight_grad_add"] == 2 * 2 + 1  # 2 input spikes x 2 targets + 1 hidden spike
    assert "core.weight_grad_mac" not in c
    assert c["core.input_grad_mac"] == (T - 1) * 2 * 1  # readout: every step, 2 x 1 weights


@pytest.mark.parametrize("backward", ["dense", "sparse"])
def test_chip_counts_equal_the_kernels_counts(tmp_path, backward):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("""
version: 1
data: {dataset: digits, train_samples: 256, test_samples: 64}
network: {model: surrogate, hidden_sizes: [24, 16], init_gain: 60.0}
learning: {epochs: 1, batch_size: 64, lr: 0.005}
run: {progress: false, chip_batches_per_epoch: 100}
hardware: edge
energy: generic_45nm
""")
    cfg = load_config(cfg_file, [f"learning.backward={backward}"])
    stats = run_experiment(cfg, tmp_path / "run")
    f = stats["frontend"]["train"]
    c = stats["hardware"]["phases"]["train"]["counts"]
    assert f["batches"] == 4 and stats["hardware"]["phases"]["train"]["samples"] == 256
    assert c["core.surrogate_eval"] == sum(f["surrogate_evals"]) > 0
    assert c.get("core.weight_grad_add", 0) + c.get("core.weight_grad_mac", 0) == sum(
        f["weight_grad_macs"])
    assert c["core.input_grad_mac"] == sum(f["input_grad_macs"]) > 0
    assert c["core.synop"] == sum(f["synops"])
    assert c["core.optimizer_op"] == 4 * (64 * 24 + 24 * 16 + 16 * 10)
    assert stats["hardware"]["phases"]["infer"]["samples"] == 64
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["chip"] == "edge"


@pytest.mark.parametrize("sparse", [True, False])
def test_event_equals_simpy_on_a_training_trace(sparse):
    hw = load_hardware("edge")
    a = simulate(_trace(sparse), hw, fidelity="event")
    b = simulate(_trace(sparse), hw, fidelity="simpy")
    t = simulate(_trace(sparse), hw, fidelity="timestep")
    assert a.counts == b.counts == t.counts
    assert a.cycles == b.cycles > 0
