"""Tests for the `accel-sim` command line (in-process via main(), once as a subprocess)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accel_sim.cli import main
from accel_sim.config import load_config
from accel_sim.machine import cpu_model

ERR = "accel-sim: error: "

TINY = """\
version: 1
name: tiny
seed: 3
data:
  dataset: digits
  train_samples: 40
  test_samples: 30
network:
  n_excitatory: 20
encoding:
  present_ms: 100
run:
  progress: false
"""

COUNT_KEYS = {
    "samples", "presentations", "time_steps", "idle_rest_steps", "input_spikes", "exc_spikes",
    "inh_spikes", "synaptic_events", "neuron_updates", "weight_updates", "normalisation_ops",
    "trace_updates", "theta_updates",
}
RUN_FILES = ("config.resolved.yaml", "run.json", "stats.json", "summary.txt", "model.npz",
             "trace_infer/part-00000.npz")


ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _err_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(ERR)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny digits run shared by the tests that inspect a finished run directory."""
    base = tmp_path_factory.mktemp("cli_run")
    cfg = _write(base, TINY, "tiny.yaml")
    out = base / "out"
    code = main(["run", str(cfg), "--out", str(out)])
    return code, cfg, out


# ------------------------------------------------------------------- validate


def test_validate_good_config(tmp_path, capsys):
    cfg = _write(tmp_path, TINY)
    assert main(["validate", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == (
        f"{cfg}: OK (digits: 40 train, 40 label, 30 test samples; "
        "diehl_cook with 20 excitatory neurons)"
    )
    assert err == ""


def test_validate_applies_overrides(tmp_path, capsys):
    cfg = _write(tmp_path, TINY)
    assert main(["validate", str(cfg), "--set", "network.n_excitatory=7",
                 "--set", "data.label_samples=10"]) == 0
    out = capsys.readouterr().out
    assert "10 label" in out and "7 excitatory" in out


def test_validate_bad_config_one_line_per_problem(tmp_path, capsys):
    cfg = _write(tmp_path, "version: 1\nseed: -1\nnetwrok: {}\nnetwork:\n  n_excitatory: 0\n")
    assert main(["validate", str(cfg)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = _err_lines(err)
    assert len(lines) == 3
    assert len(err.splitlines()) == 3
    assert all(line.startswith(f"{ERR}{cfg}: ") for line in lines)
    assert any("netwrok: unknown key; did you mean 'network'?" in line for line in lines)
    assert any("network.n_excitatory:" in line for line in lines)
    assert any(": seed:" in line for line in lines)


def test_validate_duplicate_key(tmp_path, capsys):
    cfg = _write(tmp_path, "version: 1\nseed: 1\nseed: 2\n")
    assert main(["validate", str(cfg)]) == 2
    (line,) = _err_lines(capsys.readouterr().err)
    assert "duplicate key 'seed'" in line and "line 3" in line and "line 2" in line


def test_validate_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    lines = _err_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "config file not found" in lines[0]


def test_validate_bad_override(tmp_path, capsys):
    cfg = _write(tmp_path, TINY)
    assert main(["validate", str(cfg), "--set", "foo", "--set", "=1"]) == 2
    lines = _err_lines(capsys.readouterr().err)
    assert len(lines) == 2
    assert all("expected KEY=VALUE" in line for line in lines)


def test_validate_missing_dataset(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("ACCEL_SIM_DATA", str(empty))
    cfg = _write(tmp_path, "version: 1\ndata:\n  dataset: mnist\n")
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert len(_err_lines(err)) == 1
    assert "ACCEL_SIM_DATA" in err and str(empty) in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- show-config


def test_show_config_with_set_parses_back(tmp_path, capsys):
    cfg = _write(tmp_path, TINY)
    assert main(["show-config", str(cfg), "--set", "network.n_excitatory=33",
                 "--set", "learning.nu_post=2e-2"]) == 0
    text = capsys.readouterr().out
    resolved = load_config(_write(tmp_path, text, "shown.yaml"))
    assert resolved.network.n_excitatory == 33
    assert resolved.learning.nu_post == 2e-2
    assert resolved.data.train_samples == 40  # from the file
    assert resolved.network.exc.tau_theta_ms == 1e7  # default filled in
    assert resolved == load_config(cfg, ["network.n_excitatory=33", "learning.nu_post=2e-2"])


def test_show_config_defaults_without_file(capsys):
    assert main(["show-config"]) == 0
    text = capsys.readouterr().out
    assert "n_excitatory: 100" in text
    assert "version: 1" in text


def test_show_config_bad_set(capsys):
    assert main(["show-config", "--set", "network.n_excitatroy=3"]) == 2
    (line,) = _err_lines(capsys.readouterr().err)
    assert "did you mean 'n_excitatory'" in line


# ------------------------------------------------------------------------ run


def test_run_exit_code_and_files(tiny_run):
    code, _, out = tiny_run
    assert code == 0
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp"))


def test_run_resolved_config_matches(tiny_run):
    _, cfg, out = tiny_run
    assert load_config(out / "config.resolved.yaml") == load_config(cfg)


def test_run_json(tiny_run):
    _, _, out = tiny_run
    run = json.loads((out / "run.json").read_text())
    assert run["name"] == "tiny"
    assert run["seed"] == 3
    assert run["backend"] in ("cython", "numpy")
    timing = run["timing_s"]
    assert set(timing) == {"load", "train", "label", "infer", "total"}  # no chip: no replay
    assert all(isinstance(v, float) and v >= 0 for v in timing.values())
    assert timing["load"] + timing["train"] + timing["label"] + timing["infer"] <= timing["total"]
    assert run["samples"] == {"train": 40, "label": 40, "infer": 30}
    assert run["resumed"] is False
    assert run["end_time"] is not None
    assert run["cpu_model"] == cpu_model() and run["cpu_model"]  # speed depends on it


def test_cpu_model_reads_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                    "model name\t: Intel(R) Xeon(R) Processor\nflags\t: fpu\n\n"
                    "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n")
    assert cpu_model(str(info)) == "Intel(R) Xeon(R) Processor"


def test_cpu_model_without_cpuinfo_asks_the_platform_then_says_unknown(tmp_path, monkeypatch):
    absent = str(tmp_path / "absent")
    monkeypatch.setattr(platform, "processor", lambda: "i386")
    assert cpu_model(absent) == "i386"
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert cpu_model(absent) == "aarch64"
    monkeypatch.setattr(platform, "machine", lambda: "")
    assert cpu_model(absent) == "unknown"


def test_stats_json(tiny_run):
    _, _, out = tiny_run
    stats = json.loads((out / "stats.json").read_text())
    acc = stats["accuracy"]
    assert 0.0 <= acc["test"] <= 1.0
    assert acc["n_test"] == 30
    assert set(stats["frontend"]) == {"train", "label", "infer"}
    for phase, n in (("train", 40), ("label", 40), ("infer", 30)):
        counts = stats["frontend"][phase]
        assert COUNT_KEYS <= set(counts), phase
        assert counts["samples"] == n
        assert counts["presentations"] >= n
        assert counts["neuron_updates"] == counts["time_steps"] * 2 * 20
    assert stats["frontend"]["infer"]["weight_updates"] == 0
    assert stats["frontend"]["train"]["weight_updates"] > 0
    assert stats["memory"]["total_weights"] == 64 * 20 + 20 + 20 * 19
    assert stats["model"]["n_input"] == 64 and stats["model"]["n_excitatory"] == 20


def test_run_model_and_summary(tiny_run):
    _, _, out = tiny_run
    with np.load(out / "model.npz") as z:
        assert z["weights"].shape == (64, 20)
        assert z["theta"].shape == (20,)
        assert z["assignments"].shape == (20,)
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("---------- Begin Simulation Statistics")
    assert "accuracy.test" in summary and "memory.total_bytes" in summary


def test_run_prints_directory_and_accuracy(tmp_path, capsys):
    cfg = _write(tmp_path, TINY + "learning:\n  epochs: 1\n")
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--set", "data.train_samples=10",
                 "--set", "data.test_samples=10", "--set", "network.n_excitatory=5"]) == 0
    stdout = capsys.readouterr().out
    assert f"run directory: {out}" in stdout
    assert "test accuracy:" in stdout and "(10 samples)" in stdout
    assert json.loads((out / "run.json").read_text())["samples"]["infer"] == 10


def test_run_into_existing_run_dir(tiny_run, capsys):
    _, cfg, out = tiny_run
    before = (out / "stats.json").read_bytes()
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    (line,) = _err_lines(capsys.readouterr().err)
    assert "already holds a run" in line
    assert (out / "stats.json").read_bytes() == before


def test_resume_non_run_dir(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    (line,) = _err_lines(capsys.readouterr().err)
    assert "is not a run directory" in line


def test_resume_takes_only_run_dir(tmp_path, capsys):
    cfg = _write(tmp_path, TINY)
    assert main(["run", str(cfg), "--resume", str(tmp_path)]) == 2
    assert len(_err_lines(capsys.readouterr().err)) == 1


def test_run_without_config(capsys):
    assert main(["run"]) == 2
    assert "needs a CONFIG" in capsys.readouterr().err


def test_run_missing_dataset(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("ACCEL_SIM_DATA", str(empty))
    cfg = _write(tmp_path, "version: 1\ndata:\n  dataset: mnist\nrun:\n  progress: false\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    lines = _err_lines(err)
    assert len(lines) == 1 and "cannot load dataset 'mnist'" in lines[0]
    assert "ACCEL_SIM_DATA" in err
    assert "Traceback" not in err


def test_argparse_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


# ----------------------------------------------------------------- subprocess


def test_subprocess_bad_config_exit_code(tmp_path):
    cfg = _write(tmp_path, "version: 1\nnetwork:\n  n_excitatory: 0\n  n_excitatroy: 3\n")
    proc = subprocess.run([sys.executable, "-m", "accel_sim", "validate", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = _err_lines(proc.stderr)
    assert len(lines) == 2
    assert any("did you mean 'n_excitatory'" in line for line in lines)


def test_a_full_disk_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    import errno
    import os as _os

    real = _os.replace

    def full(src, dst):
        if str(dst).endswith("stats.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(_os, "replace", full)
    cfg = _write(tmp_path, "version: 1\ndata: {train_samples: 20, test_samples: 10}\n"
                           "network: {n_excitatory: 10}\nencoding: {present_ms: 20}\n"
                           "run: {progress: false, trace_phases: []}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err


def test_validate_resolves_the_energy_table_against_the_chip(tmp_path, capsys):
    """A table without an energy for the chip's DRAM kind fails in validate (and in run,
    before any training), not with a traceback after training."""
    import yaml

    table = yaml.safe_load((ROOT / "configs" / "energy" / "generic_45nm.yaml").read_text())
    for action in ("read_bit", "write_bit"):
        table["components"]["dram"]["actions"][action]["pj_per_bit_by_kind"].pop("lpddr4", None)
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(table))
    cfg = _write(tmp_path, "version: 1\ndata: {train_samples: 20, test_samples: 10}\n"
                           "network: {n_excitatory: 10}\nrun: {progress: false}\n"
                           f"hardware: edge\nenergy: {tmp_path / 't.yaml'}\n")
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "no energy for dram kind 'lpddr4'" in err and "Traceback" not in err
    assert main(["run", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r" / "checkpoint.npz").exists()  # stopped before training


def test_validate_reports_the_chip_and_warns_of_a_message_model_mismatch(tmp_path, capsys):
    cfg = _write(tmp_path, "version: 1\ndata: {train_samples: 20, test_samples: 10}\n"
                           "network: {n_excitatory: 10}\nhardware: loihi_like\n"
                           "energy: sanafe_loihi\n")
    assert main(["validate", str(cfg)]) == 0
    out = capsys.readouterr()
    assert "chip loihi_like" in out.out and "priced with sanafe_loihi" in out.out
    assert "calibrated for noc.cast=unicast" in out.err


def test_a_chip_changed_by_set_says_modified_everywhere(tmp_path):
    from accel_sim import load_config, run_experiment

    cfg = load_config(None, ["data.train_samples=6", "data.test_samples=4",
                             "network.n_excitatory=10", "run.progress=false",
                             "run.trace_phases=[]", "hardware=edge", "energy=generic_45nm",
                             "hardware.sram.size_kib=64"])
    assert cfg.hardware.name == "edge (modified)" and cfg.energy.name == "generic_45nm"
    stats = run_experiment(cfg, tmp_path / "r")
    assert stats["hardware"]["chip"] == "edge (modified)"
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["chip"] == "edge (modified)" and run["model"] == "diehl_cook"
    summary = (tmp_path / "r" / "summary.txt").read_text()
    assert "edge (modified)" in summary and "diehl_cook" in summary


def test_preset_names_and_section_keys_have_did_you_mean(tmp_path, capsys):
    cfg = _write(tmp_path, "version: 1\nhardware: edge\nenergy: loihi2018\n")
    assert main(["validate", str(cfg)]) == 2
    assert "did you mean 'loihi_2018'" in capsys.readouterr().err
    cfg = _write(tmp_path, "version: 1\nhardware: {noc: {cats: unicast}}\nenergy: generic_45nm\n")
    assert main(["validate", str(cfg)]) == 2
    assert "hardware.noc.cats: unknown key; did you mean 'cast'?" in capsys.readouterr().err
