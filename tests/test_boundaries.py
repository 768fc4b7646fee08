"""Bad input at the boundaries, tried as a new user would: two writers of one run
directory, Ctrl-C, a full disk at the start, reports of unfinished runs, files of the
wrong kind, and the Python API's arguments."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_killed_after

from accel_sim import (
    NetworkSpec,
    Population,
    Projection,
    SpikeTrace,
    load_config,
    load_hardware,
    price,
    run_experiment,
    simulate,
)
from accel_sim.cli import _parser, main
from accel_sim.errors import ConfigError, MappingError
from snn_frontend.spec import SpecError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = str(ROOT / "configs" / "default.yaml")
SMALL = ["data.train_samples=30", "data.test_samples=20", "network.n_excitatory=20",
         "encoding.present_ms=20", "run.checkpoint_every=10", "run.trace_phases=[]"]


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "accel_sim", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _sets(sets) -> list[str]:
    return [a for s in sets for a in ("--set", s)]


# -------------------------------------------------------------- the run directory
@pytest.mark.slow
def test_two_runs_into_one_directory_one_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "same"
    procs = [_cli("run", DEFAULT, *_sets(SMALL + ["data.train_samples=200"]), "--out",
                  str(out), "--no-progress") for _ in range(2)]
    results = [(p.returncode, p.communicate(timeout=300)[1]) for p in procs]
    results = [(p.returncode, err) for p, (_, err) in zip(procs, results)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert ("is being written by pid" in refused and "(run: " in refused) or \
        "already holds a run" in refused
    assert json.loads((out / "stats.json").read_text())["accuracy"]["n_test"] == 20


def test_a_locked_run_directory_refuses_report_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "r"
    run_experiment(load_config(DEFAULT, SMALL), out, progress=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from accel_sim.run.rundir import RunLock\n"
         f"with RunLock(Path({str(out)!r}), 'run'):\n    print('held', flush=True)\n"
         "    time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["report", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"is being written by pid {holder.pid} (run: " in err
    finally:
        holder.kill()
        holder.communicate()
    assert main(["report", str(out)]) == 0  # the lock went with its holder


@pytest.mark.slow
def test_ctrl_c_says_where_the_run_is_and_how_to_resume(tmp_path):
    out = tmp_path / "int"
    # long enough after its first checkpoint (sample 10) that the signal finds it running
    # a terminal's foreground job takes Ctrl-C by default; a suite started in the background
    # (`pytest &`) hands its children SIGINT ignored, so the child restores the default
    p = _cli("run", DEFAULT, *_sets(SMALL + ["data.train_samples=400", "encoding.present_ms=200"]),
             "--out", str(out), "--no-progress",
             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (out / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130, err
    assert f"the run directory is {out}; continue it with: accel-sim run --resume {out}" in err
    assert "Traceback" not in err
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0


def test_report_and_compare_of_an_unfinished_run_say_how_to_resume(tmp_path, monkeypatch,
                                                                     capsys):
    out = tmp_path / "k"
    run_killed_after(load_config(DEFAULT, SMALL), out, monkeypatch, 15)
    for args in (["report", str(out)], ["compare", str(out), str(out)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"{out} is an unfinished run (no stats.json): continue it with " \
               f"`accel-sim run --resume {out}`" in err


def test_a_full_disk_at_the_start_leaves_no_run_directory(tmp_path):
    """A file-size limit (the OS refuses writes past 1 KiB, as a full disk would) stops the
    run at its first file; the directory it made is gone."""
    out = tmp_path / "full"
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))\n"
            "from accel_sim.cli import main\n"
            f"sys.exit(main(['run', {DEFAULT!r}, '--out', {str(out)!r}, '--no-progress']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2, p.stderr
    assert "cannot write" in p.stderr and "config.resolved.yaml" in p.stderr
    assert not out.exists()


# ------------------------------------------------------ files of the wrong kind
def test_run_of_a_folder_says_it_is_a_folder(capsys):
    assert main(["run", str(ROOT / "configs")]) == 2
    err = capsys.readouterr().err
    assert "configs is a folder; give a config file in it, e.g. " in err


@pytest.mark.parametrize("file,kind", [("chips/edge.yaml", "a chip (hardware) file"),
                                       ("sweeps/dc_network_size.yaml", "a sweep file")])
def test_run_of_another_kind_of_file_says_what_it_is(capsys, file, kind):
    assert main(["run", str(ROOT / "configs" / file)]) == 2
    assert f"this is {kind}, not a run config" in capsys.readouterr().err


def test_report_with_a_chip_file_as_the_energy_table_says_so(tmp_path, capsys):
    out = tmp_path / "r"
    run_experiment(load_config(DEFAULT, SMALL), out, progress=False)
    assert main(["report", str(out), "--energy", str(ROOT / "configs/chips/edge.yaml")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "edge.yaml is a chip (hardware) file, not an energy table; shipped: " \
           "generic_45nm, loihi_2018, sanafe_loihi" in line


def test_export_into_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    sets = ["network.model=surrogate", "network.hidden_sizes=[10]", "data.train_samples=32",
            "data.test_samples=16", "learning.batch_size=16", "encoding.present_ms=10"]
    run_experiment(load_config(None, sets), tmp_path / "r", progress=False)
    dest = tmp_path / "no" / "such" / "m.nir"
    assert main(["export", str(tmp_path / "r"), "--out", str(dest)]) == 2
    assert f"--out {dest}: there is no folder {dest.parent}" in capsys.readouterr().err


def test_every_argument_and_option_has_help():
    ap = _parser()
    sub = next(a for a in ap._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest == "help":
                continue
            assert action.help, f"accel-sim {name}: {'/'.join(action.option_strings) or action.dest}"


# ------------------------------------------------------------------ the Python API
def _spec() -> NetworkSpec:
    return NetworkSpec((Population("input", 4, "input", state_vars=()),
                        Population("hidden", 3, "lif", state_vars=("v",))),
                       (Projection("input", "hidden", "dense", 8),))


@pytest.mark.parametrize("bad", [0.5, np.nan, -1, 2])
def test_rasters_must_be_spikes(bad):
    r = np.zeros((5, 4))
    r[2, 1] = bad
    with pytest.raises(SpecError, match="raster of 'input' must be boolean \\(or 0/1\\)"):
        SpikeTrace.from_rasters(_spec(), {"input": r})


def test_rasters_of_0_and_1_are_spikes():
    r = np.zeros((5, 4), np.int64)
    r[2, 1] = 1
    trace = SpikeTrace.from_rasters(_spec(), {"input": r.astype(float)})
    assert trace.total("input") == 1


def _result():
    r = np.zeros((6, 4), bool)
    r[::2, 0] = True
    return simulate(SpikeTrace.from_rasters(_spec(), {"input": r}), "edge")


def test_simulate_and_price_take_names():
    res = _result()
    cost = price(res, "generic_45nm")  # the chip it ran on
    assert cost.chip == "edge" and cost.table == "generic_45nm"
    assert cost.counts["chip.input_spike"] == 3
    assert price(res, "generic_45nm", "edge").energy_pj.total == cost.energy_pj.total


def test_pricing_on_another_chip_than_simulated_is_an_error():
    with pytest.raises(ConfigError, match="simulated on chip 'edge', not on 'loihi_like'"):
        price(_result(), "generic_45nm", load_hardware("loihi_like"))
    with pytest.raises(ConfigError, match="simulated on chip 'edge', not on 'edge \\(modified\\)'"):
        price(_result(), "generic_45nm", load_hardware("edge", ["noc.cast=unicast"]))


def test_simulate_says_what_it_needs():
    trace = SpikeTrace.from_rasters(_spec(), {})
    with pytest.raises(ConfigError, match="hw must be a chip: a shipped name"):
        simulate(trace, 42)
    with pytest.raises(ConfigError, match="trace must be a SpikeTrace"):
        simulate({"input": np.zeros((3, 4))}, "edge")
    with pytest.raises(ConfigError, match="unknown fidelity 'exact'; known: timestep, event"):
        simulate(trace, "edge", fidelity="exact")


def test_a_misspelt_population_in_a_placement_is_named():
    trace = SpikeTrace.from_rasters(_spec(), {})
    with pytest.raises(MappingError, match="explicit placement names no on-chip population: "
                                           "'hid'; did you mean 'hidden'"):
        simulate(trace, "edge", placement={"hid": np.zeros(3, int)})
