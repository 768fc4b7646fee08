"""`accel-sim sweep`: points, the shared frontend run, results equal to direct runs, resume,
failures, executors (a real process pool and a real Dask LocalCluster on loopback)."""
import csv
import json
import os
from pathlib import Path

import pytest

from accel_sim import run_experiment
from accel_sim.cli import main
from accel_sim.config import ConfigError
from accel_sim.sweep import expand, load_sweep, run_sweep
from accel_sim.executors import LOST_WORKER, LocalExecutor, Task

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "configs" / "default.yaml"
SMALL = {"data.train_samples": 40, "data.label_samples": None, "data.test_samples": 30,
         "run.checkpoint_every": 0}


def write_sweep(tmp_path, body: dict, name="sw.yaml") -> Path:
    body = dict({"version": 1, "base": str(BASE), "set": SMALL}, **body)
    p = tmp_path / name
    p.write_text(json.dumps(body))  # JSON is YAML
    return p


def rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------ points
def test_grid_zip_and_points_expand_to_their_product(tmp_path):
    p = write_sweep(tmp_path, {
        "grid": {"hardware.sram.size_kib": [64, 128], "hardware.noc.cast": ["unicast", "multicast"]},
        "zip": {"hardware.cores.count": [4, 16], "hardware.cores.mesh_width": [2, 4],
                "hardware.cores.mesh_height": [2, 4]},
        "points": [{"energy": "generic_45nm"}, {"energy": "loihi_2018"}]})
    points = expand(*[load_sweep(p)[0]], p)
    assert len(points) == 2 * 2 * 2 * 2
    assert len({pt.id for pt in points}) == 16
    first = points[0]
    assert first.values == {"energy": "generic_45nm", "hardware.sram.size_kib": 64,
                            "hardware.noc.cast": "unicast", "hardware.cores.count": 4,
                            "hardware.cores.mesh_width": 2, "hardware.cores.mesh_height": 2}
    assert first.config.hardware.sram.size_kib == 64
    assert first.config.hardware.cores.count == 4
    assert first.config.hardware.name == "edge (modified)"
    assert expand(load_sweep(p)[0], p)[5].id == points[5].id  # ids are stable


def test_every_bad_point_is_reported_before_anything_runs(tmp_path):
    p = write_sweep(tmp_path, {"grid": {"hardware.sram.size_kib": [64, -1, "x"]}})
    with pytest.raises(ConfigError) as err:
        expand(load_sweep(p)[0], p)
    assert len(err.value.problems) == 2
    assert err.value.problems[0].startswith("point 1 (hardware.sram.size_kib=-1)")
    assert err.value.problems[1].startswith("point 2 (hardware.sram.size_kib=x)")


def test_bad_sweep_files(tmp_path):
    for body, msg in [({"zip": {"a.b": [1, 2], "c.d": [1]}}, "same length"),
                      ({"grid": {"a.b": []}}, "without values"),
                      ({"grid": {"seed": [1]}, "zip": {"seed": [2]}}, "more than one place"),
                      ({"gird": {}}, "gird")]:
        p = write_sweep(tmp_path, body)
        with pytest.raises(ConfigError, match=msg):
            expand(load_sweep(p)[0], p)


def test_cli_exit_2_one_line_per_bad_point(tmp_path, capsys):
    p = write_sweep(tmp_path, {"grid": {"network.n_excitatory": [10, 0, -5]}})
    assert main(["sweep", str(p), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("accel-sim: error: ") for line in err)
    assert not (tmp_path / "out").exists()


def test_set_overrides_every_point_of_a_shipped_sweep_file(tmp_path):
    """--set changes the base config of every point without copying the sweep file (whose
    relative base would stop resolving in a copy: a clear error says so)."""
    shipped = ROOT / "configs" / "sweeps" / "edge_dc400_hw.yaml"
    sw, text = load_sweep(shipped, overrides=["data.test_samples=7", "seed=3"])
    points = expand(sw, shipped)
    assert {pt.config.data.test_samples for pt in points} == {7}
    assert {pt.config.seed for pt in points} == {3}
    assert text.endswith("# --set data.test_samples=7\n# --set seed=3\n")
    plain = expand(load_sweep(shipped)[0], shipped)
    assert [pt.id for pt in points] == [pt.id for pt in plain]  # ids: the swept values
    assert {pt.config.data.test_samples for pt in plain} != {7}
    copy = tmp_path / "copy.yaml"
    copy.write_text(shipped.read_text())
    with pytest.raises(ConfigError, match="read from the sweep file's folder.*--set"):
        expand(load_sweep(copy)[0], copy)


def test_set_of_a_swept_key_or_without_a_value_is_an_error(tmp_path, capsys):
    p = write_sweep(tmp_path, {"grid": {"hardware.sram.size_kib": [16, 128]}})
    with pytest.raises(ConfigError) as err:
        load_sweep(p, overrides=["hardware.sram.size_kib=64", "seed"])
    assert err.value.problems == [
        "--set hardware.sram.size_kib: the sweep file sweeps this key; edit its values there",
        "--set 'seed': expected KEY=VALUE, e.g. data.test_samples=1000"]
    assert main(["validate", str(p), "--set", "network.n_excitatory=0"]) == 2
    assert "network.n_excitatory" in capsys.readouterr().err
    assert main(["validate", str(p), "--set", "network.n_excitatory=20"]) == 0
    assert "OK (2 points" in capsys.readouterr().out


# ------------------------------------------------------------------- a real sweep
@pytest.fixture(scope="module")
def hw_sweep(tmp_path_factory):
    """Two chips x two energy tables over one frontend run, on 2 local workers."""
    tmp = tmp_path_factory.mktemp("sweep")
    p = write_sweep(tmp, {"grid": {"hardware.sram.size_kib": [16, 128],
                                   "energy": ["generic_45nm", "loihi_2018"]}})
    out = tmp / "out"
    return p, out, run_sweep(p, out, workers=2, progress=False)


def test_one_frontend_run_one_replay_per_chip(hw_sweep):
    _, out, res = hw_sweep
    assert res.frontend_runs == 1 and len(list((out / "cache").iterdir())) == 1
    assert res.replays == 2  # the energy tables re-price, they do not replay
    assert [r["status"] for r in res.rows] == ["ok"] * 4
    assert (out / "pareto.png").stat().st_size > 0
    assert "Pareto front" in (out / "summary.md").read_text()
    table = rows(out)
    assert [int(r["index"]) for r in table] == [0, 1, 2, 3]
    assert table[0]["hardware.sram.size_kib"] == "16" and table[1]["energy"] == "loihi_2018"
    assert float(table[0]["sram_spill_bytes"]) > 0 == float(table[2]["sram_spill_bytes"])


def test_points_equal_direct_runs(hw_sweep, tmp_path):
    """A point replayed from the trace cache is the run `accel-sim run` would have made."""
    p, out, _ = hw_sweep
    for point in expand(load_sweep(p)[0], p)[:2]:
        direct = run_experiment(point.config, tmp_path / point.id, progress=False)
        swept = json.loads((out / "points" / point.id / "stats.json").read_text())
        assert swept["hardware"]["phases"] == direct["hardware"]["phases"]
        assert swept["accuracy"] == direct["accuracy"]
        assert swept["hardware"]["energy_table"] == direct["hardware"]["energy_table"]


def test_a_sweep_over_fidelities_replays_each_once_and_simpy_equals_event(tmp_path):
    """run.fidelity is sweepable (simpy included): one frontend run, one replay per
    fidelity; simpy and event give the same cycles, and a chip without a barrier runs
    under simpy only (the others are refused before anything runs)."""
    p = write_sweep(tmp_path, {"set": dict(SMALL, **{"network.n_excitatory": 20,
                                                     "encoding.present_ms": 20.0,
                                                     "run.phases": ["infer"]}),
                               "grid": {"run.fidelity": ["timestep", "event", "simpy"]}})
    res = run_sweep(p, tmp_path / "out", workers=1, progress=False)
    assert [r["status"] for r in res.rows] == ["ok"] * 3
    assert res.frontend_runs == 1 and res.replays == 3
    lat = {r["run.fidelity"]: r["infer.latency_per_sample_s"] for r in res.rows}
    assert lat["simpy"] == lat["event"] and lat["timestep"] > 0
    free = write_sweep(tmp_path, {"set": dict(SMALL, **{"hardware.sync.barrier": False}),
                                  "grid": {"run.fidelity": ["event", "simpy"]}}, "free.yaml")
    with pytest.raises(ConfigError) as err:
        expand(load_sweep(free)[0], free)
    (line,) = err.value.problems
    assert line.startswith("point 0 (run.fidelity=event): run.fidelity: event models chips")


def test_rerun_redoes_no_finished_point(hw_sweep):
    p, out, res = hw_sweep
    lost = res.rows[1]["point"]
    kept = out / "points" / res.rows[0]["point"] / "stats.json"
    before = kept.stat().st_mtime_ns
    (out / "points" / lost / "stats.json").unlink()  # as if killed while writing it
    again = run_sweep(p, out, workers=2, progress=False)
    assert again.frontend_runs == 0 and again.replays == 1
    assert kept.stat().st_mtime_ns == before
    assert [r["status"] for r in again.rows] == ["ok"] * 4
    assert again.rows[1]["infer.energy_per_sample_pj"] == res.rows[1]["infer.energy_per_sample_pj"]


def test_another_sweep_in_the_same_directory_is_refused(hw_sweep, tmp_path):
    p, out, _ = hw_sweep
    other = write_sweep(tmp_path, {"grid": {"seed": [1, 2]}})
    with pytest.raises(Exception, match="holds another sweep"):
        run_sweep(other, out, workers=1, progress=False)
    with pytest.raises(Exception, match="holds another sweep"):  # the same file, other --set
        run_sweep(p, out, workers=1, progress=False, overrides=["seed=5"])


def test_cli_sweep_set_reaches_every_point(tmp_path, capsys):
    p = write_sweep(tmp_path, {"grid": {"energy": ["generic_45nm", "loihi_2018"]}})
    out = tmp_path / "o"
    assert main(["sweep", str(p), "--out", str(out), "--workers", "1", "--no-progress",
                 "--set", "data.test_samples=12", "--set", "data.train_samples=10"]) == 0
    for r in rows(out):
        stats = json.loads((Path(r["run_dir"]) / "stats.json").read_text())
        assert stats["hardware"]["phases"]["infer"]["samples"] == 12
    assert (out / "sweep.yaml").read_text().endswith("# --set data.train_samples=10\n")


@pytest.mark.slow
def test_failed_and_infeasible_points_are_recorded_and_the_sweep_goes_on(tmp_path):
    p = write_sweep(tmp_path, {"points": [
        {},
        {"hardware.placement_file": str(tmp_path / "missing.npz"), "hardware.mapping": "explicit"},
        {"hardware.cores.count": 1, "hardware.cores.mesh_width": 1, "hardware.cores.mesh_height": 1}]})
    res = run_sweep(p, tmp_path / "out", workers=1, progress=False)
    status = [(r["status"], r["error"]) for r in res.rows]
    assert status[0] == ("ok", "")
    assert status[1][0] == "failed" and "missing.npz" in status[1][1]
    assert status[2][0] == "infeasible" and "chip holds 1 x 256" in status[2][1]
    assert res.frontend_runs == 1
    assert "missing.npz" in (tmp_path / "out" / "summary.md").read_text()


# -------------------------------------------------------------------- executors
def crash_once(payload: dict) -> str:
    """Kills its worker process the first time (a lost worker), then succeeds."""
    marker = Path(payload["marker"])
    if not marker.exists():
        marker.write_text("x")
        os._exit(1)
    return "done"


def always_dies(payload: dict) -> str:
    os._exit(1)


def raises(payload: dict) -> str:
    raise ZeroDivisionError("boom")


@pytest.mark.slow
def test_local_pool_retries_a_lost_worker_once(tmp_path):
    ex = LocalExecutor(2)
    try:
        got = {t.key: (r, e) for t, r, e in ex.run([
            Task("once", crash_once, {"marker": str(tmp_path / "m")}),
            Task("dies", always_dies, {}), Task("raises", raises, {})])}
    finally:
        ex.close()
    assert got["once"] == ("done", None)
    assert got["dies"] == (None, LOST_WORKER)
    assert got["raises"] == (None, "crash: ZeroDivisionError: boom")


@pytest.mark.slow
def test_dask_local_cluster_equals_the_local_pool(hw_sweep, tmp_path):
    pytest.importorskip("distributed")
    p, out, res = hw_sweep
    dres = run_sweep(p, tmp_path / "dask", executor="dask", workers=2, progress=False)
    assert dres.executor == "dask" and dres.workers == 2 and dres.frontend_runs == 1
    for a, b in zip(res.rows, dres.rows):
        sa = json.loads((out / "points" / a["point"] / "stats.json").read_text())
        sb = json.loads((tmp_path / "dask" / "points" / b["point"] / "stats.json").read_text())
        assert sa == sb


@pytest.mark.slow
def test_dask_retries_a_lost_worker_once(tmp_path):
    pytest.importorskip("distributed")
    from accel_sim.executors import DaskExecutor

    ex = DaskExecutor(2)
    try:
        got = {t.key: (r, e) for t, r, e in ex.run([
            Task("once", crash_once, {"marker": str(tmp_path / "m")}),
            Task("raises", raises, {})])}
        got.update({t.key: (r, e) for t, r, e in ex.run([Task("dies", always_dies, {})])})
    finally:
        ex.close()
    assert got["once"] == ("done", None)
    assert got["dies"] == (None, LOST_WORKER)
    assert got["raises"] == (None, "crash: ZeroDivisionError: boom")


@pytest.mark.slow
def test_dask_on_an_existing_scheduler(hw_sweep, tmp_path):
    """--scheduler ADDRESS: the points run on a cluster the sweep did not start."""
    distributed = pytest.importorskip("distributed")
    p, out, res = hw_sweep
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        dres = run_sweep(p, tmp_path / "ext", executor="dask",
                         scheduler=cluster.scheduler_address, progress=False)
    assert dres.workers == 1 and [r["status"] for r in dres.rows] == ["ok"] * 4
    for a, b in zip(res.rows, dres.rows):
        assert a["infer.energy_per_sample_pj"] == b["infer.energy_per_sample_pj"]


@pytest.mark.slow
def test_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    p = write_sweep(tmp_path, {"grid": {"seed": [1]}})
    assert main(["sweep", str(p), "--out", str(tmp_path / "o"), "--executor", "dask",
                 "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
