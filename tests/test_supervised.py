"""The surrogate network's run: epochs, stats, the training curve, bit-identical resume, the
config rules that keep it apart from the STDP family."""
from __future__ import annotations

import json

import numpy as np
import pytest

from accel_sim import run_experiment
from accel_sim.config import ConfigError, load_config
from accel_sim.run import resume_experiment
from snn_frontend.surrogate import SurrogateNetwork

TINY = """
version: 1
name: ssgd_tiny
seed: 3
data: {dataset: digits}
network: {model: surrogate, hidden_sizes: [32, 24], init_gain: 60.0}
learning: {epochs: 3, batch_size: 64, lr: 0.005}
run: {progress: false}
"""


def _cfg(tmp_path, text=TINY, overrides=()):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return load_config(p, list(overrides))


def test_a_run_trains_epochs_and_writes_its_directory(tmp_path):
    stats = run_experiment(_cfg(tmp_path), tmp_path / "run")
    out = tmp_path / "run"
    hist = stats["accuracy"]["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert stats["accuracy"]["test"] == hist[-1]["test_accuracy"]
    # digits: 1500 training images -> 23 batches of 64 per epoch (the last partial one dropped)
    tr = stats["frontend"]["train"]
    assert tr["batches"] == tr["optimizer_steps"] == 3 * 23 and tr["samples"] == 3 * 23 * 64
    assert stats["model"]["hidden"] == [32, 24] and stats["model"]["backward"] == "sparse"
    assert 0 < stats["model"]["active_fraction"][0] < 0.2
    for name in ("stats.json", "run.json", "summary.txt", "training.png", "model.npz"):
        assert (out / name).is_file()
    with np.load(out / "model.npz") as z:
        assert [z[f"W{i}"].shape for i in range(3)] == [(64, 32), (32, 24), (24, 10)]
    assert json.loads((out / "run.json").read_text())["model"] == "surrogate"


def test_resume_after_a_kill_gives_the_same_weights(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    run_experiment(cfg, tmp_path / "whole")
    calls = {"n": 0}
    real = SurrogateNetwork.adam_step

    def dies(self, grads):
        calls["n"] += 1
        if calls["n"] > 23 + 5:  # in the second epoch, after the first epoch's checkpoint
            raise KeyboardInterrupt
        return real(self, grads)

    with monkeypatch.context() as m:
        m.setattr(SurrogateNetwork, "adam_step", dies)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(cfg, tmp_path / "killed")
    assert (tmp_path / "killed" / "checkpoint.npz").is_file()
    stats = resume_experiment(tmp_path / "killed")
    with np.load(tmp_path / "whole" / "model.npz") as a, \
            np.load(tmp_path / "killed" / "model.npz") as b:
        for k in a.files:
            assert np.array_equal(a[k], b[k])
    whole = json.loads((tmp_path / "whole" / "stats.json").read_text())
    assert stats["accuracy"]["history"] == [
        dict(h, seconds=stats["accuracy"]["history"][i]["seconds"])
        for i, h in enumerate(whole["accuracy"]["history"])]
    assert json.loads((tmp_path / "killed" / "run.json").read_text())["resumed"] is True


def test_dense_and_sparse_backward_differ_only_in_the_backward(tmp_path):
    dense = run_experiment(_cfg(tmp_path, overrides=["learning.backward=dense",
                                                     "learning.epochs=1"]), tmp_path / "d")
    sparse = run_experiment(_cfg(tmp_path, overrides=["learning.epochs=1"]), tmp_path / "s")
    d, s = dense["frontend"]["train"], sparse["frontend"]["train"]
    # the first batch is identical (same initial weights); the backward counts differ
    assert d["input_spikes"] == s["input_spikes"]
    assert d["surrogate_evals"] == [d["samples"] * 99 * 32, d["samples"] * 99 * 24]
    assert s["surrogate_evals"][0] < d["surrogate_evals"][0] / 10
    assert s["input_grad_macs"][1] < d["input_grad_macs"][1] / 10


@pytest.mark.parametrize("text, fragment", [
    ("network: {model: surrogate}\nrun: {phases: [train, label, infer]}\n", "no labelling"),
    ("network: {model: diehl_cook}\nlearning: {rule: bptt}\n",
     "learning.rule: network.model diehl_cook is trained by learning.rule: triplet_stdp"),
    ("data: {dataset: nmnist}\n", "data.dataset: diehl_cook reads images"),
    ("network: {model: surrogate}\nencoding: {scheme: poisson}\n", "latency code"),
    ("network: {model: surrogate}\nlearning: {backward: fast}\n", "learning.backward"),
])
def test_config_keeps_the_families_apart(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _cfg(tmp_path, "version: 1\n" + text)


def test_a_batch_larger_than_the_data_is_a_clear_error(tmp_path):
    from accel_sim.errors import RunError

    cfg = _cfg(tmp_path, overrides=["data.train_samples=50"])
    with pytest.raises(RunError, match="batch_size 64 exceeds the 50 training samples"):
        run_experiment(cfg, tmp_path / "r")
