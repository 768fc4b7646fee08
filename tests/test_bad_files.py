"""Bad files never traceback or lose data: corrupt, truncated, foreign or mismatched
checkpoints, models and traces are exit-2 errors naming the file; a full disk leaves no
truncated file; --resume says when there is nothing to resume; a closed pipe is fine."""
import errno
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_killed_after

from accel_sim import load_config, run_experiment
from accel_sim.cli import main
from snn_frontend.files import FileWriteError, atomic_write
from snn_frontend.trace import SpikeTrace, TraceError

TINY = ["name=tinybad", "data.train_samples=20", "data.test_samples=10", "network.n_excitatory=10",
        "encoding.present_ms=20", "run.progress=false", "run.trace_phases=[infer]"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fin") / "r"
    run_experiment(load_config(None, TINY), out)
    return out


@pytest.fixture
def killed_run(tmp_path, monkeypatch):
    cfg = load_config(None, TINY + ["run.checkpoint_every=5"])
    out = tmp_path / "k"
    run_killed_after(cfg, out, monkeypatch, 12)
    return out


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_resume_of_a_finished_run_says_it_is_finished(finished_run, capsys):
    assert main(["run", "--resume", str(finished_run)]) == 2
    assert "is finished" in _err(capsys)


def test_resume_without_a_checkpoint_says_so_instead_of_retraining(tmp_path, capsys):
    cfg = load_config(None, TINY)
    out = tmp_path / "nock"
    from accel_sim.config import dump_config

    out.mkdir()  # a run that died before its first checkpoint
    (out / "config.resolved.yaml").write_text(dump_config(cfg))
    assert main(["run", "--resume", str(out)]) == 2
    assert "no checkpoint.npz to resume from" in _err(capsys)
    assert not (out / "stats.json").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "mismatched"])
def test_a_bad_checkpoint_is_one_line_naming_the_file(killed_run, capsys, damage):
    ck = killed_run / "checkpoint.npz"
    data = ck.read_bytes()
    if damage == "garbage":
        ck.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        ck.write_bytes(data[: len(data) // 2])
    elif damage == "foreign":
        np.savez(ck, something=np.arange(3))
    else:  # a checkpoint of a network of another size
        with np.load(ck) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["net_weights"] = np.zeros((64, 11), np.float32)
        np.savez(ck, **arrays)
    assert main(["run", "--resume", str(killed_run)]) == 2
    err = _err(capsys)
    assert str(ck) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("damage", ["garbage", "mismatched"])
def test_a_bad_init_model_is_an_exit_2_error(finished_run, tmp_path, capsys, damage):
    model = tmp_path / "m.npz"
    if damage == "garbage":
        model.write_bytes(b"\x00" * 40)
    else:
        np.savez(model, weights=np.zeros((64, 3), np.float32), theta=np.zeros(3))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\ndata: {train_samples: 20, test_samples: 10}\n"
                   "network: {n_excitatory: 10, init_model: " + str(model) + "}\n"
                   "run: {progress: false, phases: [label, infer]}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = _err(capsys)
    assert str(model) in err and ("not a readable" in err or "(another network?)" in err)


def test_a_corrupt_trace_part_is_a_trace_error(finished_run, tmp_path):
    part = tmp_path / "part-00000.npz"
    good = (finished_run / "trace_infer" / "part-00000.npz").read_bytes()
    part.write_bytes(good[:100])
    with pytest.raises(TraceError, match="not a readable SpikeTrace"):
        SpikeTrace.load(part)
    with np.load(finished_run / "trace_infer" / "part-00000.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["s0_idx"] = arrays["s0_idx"][:-1]  # a spike count that does not match its indices
    np.savez(part, **arrays)
    with pytest.raises(TraceError, match="counts .* spikes but holds"):
        SpikeTrace.load(part)
    with pytest.raises(TraceError, match="no such trace"):
        SpikeTrace.load(tmp_path / "missing")


@pytest.mark.parametrize("victim", ["model.npz", "energy_breakdown.png", "part-00000.npz",
                                    "summary.txt"])
def test_a_full_disk_leaves_no_truncated_file(tmp_path, monkeypatch, capsys, victim):
    """The disk fills while `victim` is written: exit 2 with the OS's reason, and neither the
    file nor its temporary is left behind."""
    real = os.replace

    def full(src, dst):
        if str(dst).endswith(victim):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", full)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\ndata: {train_samples: 20, test_samples: 10}\n"
                   "network: {n_excitatory: 10}\nencoding: {present_ms: 20}\n"
                   "run: {progress: false, trace_phases: [infer]}\n"
                   "hardware: edge\nenergy: generic_45nm\n")
    out = tmp_path / "r"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    assert "No space left on device" in _err(capsys)
    left = [p.name for p in out.rglob("*") if p.name.endswith(victim)]
    assert left == [], left  # nor a ".<victim>.tmp"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as fh:
            fh.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    with pytest.raises(FileWriteError, match="cannot write"):
        with atomic_write(tmp_path / "no_such_dir" / "y.txt", "w") as fh:
            fh.write("x")


def test_compare_says_which_phases_it_cannot_compare(finished_run, tmp_path, capsys):
    other = tmp_path / "inf"
    run_experiment(load_config(None, TINY + ["run.phases=[label, infer]", "hardware=edge",
                                             "energy=generic_45nm"]), other)
    a = tmp_path / "hw"
    run_experiment(load_config(None, TINY + ["hardware=edge", "energy=generic_45nm"]), a)
    assert main(["compare", str(a), str(other)]) == 0
    out = capsys.readouterr().out
    assert "not compared: train: only in A" in out
    assert "model diehl_cook" in out and "chip edge" in out


def test_a_closed_pipe_is_not_a_traceback(finished_run):
    cmd = f"{sys.executable} -m accel_sim compare {finished_run} {finished_run} | head -1"
    res = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    assert res.stdout.startswith("A = ") and "Traceback" not in res.stderr
