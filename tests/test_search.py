"""`accel-sim search`: analytical filtering, one calibration per family, brief training of
the feasible candidates, the Pareto set and the selection."""
import csv
import json
from pathlib import Path

import pytest

from accel_sim import load_config, run_experiment
from accel_sim.cli import main
from accel_sim.config import ConfigError
from accel_sim.estimate import activity_of_run, estimate
from accel_sim.families.stdp import build_network, network_spec
from accel_sim.search import load_search, run_search, scale_activity

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "configs" / "default.yaml"


def write(tmp_path, **body) -> Path:
    d = {"version": 1, "base": str(BASE), "set": {"run.checkpoint_every": 0},
         "grid": {"network.n_excitatory": [20, 40, 100],
                  "network.inhibition": ["population", "lateral"]},
         "budgets": {"memory_kb": 30}, "calibrate_samples": 20,
         "train": {"data.train_samples": 60, "data.test_samples": 40}}
    d.update(body)
    p = tmp_path / "search.yaml"
    p.write_text(json.dumps(d))
    return p


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    p = write(tmp)
    return p, run_search(p, tmp / "out", workers=2, progress=False)


def _kb(n: int, inhibition: str) -> float:
    """D&C's footprint by hand, 64 digit inputs, float weights (4 bytes each) and state in
    the edge chip's 16-bit format (2 bytes each): weights 64 N (+ N(N-1) inh->exc and N
    exc->inh with the inhibitory layer); state 8 per excitatory neuron (v, ge, gi, theta,
    two counters, two traces), 3 per inhibitory one (v, ge, counter), the 64 inputs'
    traces."""
    if inhibition == "population":
        return (4 * (64 * n + n * (n - 1) + n) + 2 * (8 * n + 3 * n + 64)) / 1000
    return (4 * 64 * n + 2 * (8 * n + 64)) / 1000


@pytest.mark.slow
def test_memory_filter_is_the_networks_own_footprint(search):
    _, res = search
    for r in res.rows:
        kb = _kb(r["network.n_excitatory"], r["network.inhibition"])
        assert r["memory_kb"] == pytest.approx(kb, rel=1e-12)
        assert r["feasible"] == (kb <= 30)
    # D&C's inhibitory layer costs N(N-1) weights: N=100 with it is over 30 KB, without not
    over = {(r["network.n_excitatory"], r["network.inhibition"]) for r in res.rows
            if not r["feasible"]}
    assert over == {(100, "population")}
    assert "67.93 > 30 KB" in next(r["reason"] for r in res.rows if not r["feasible"])


@pytest.mark.slow
def test_feasible_candidates_are_trained_and_one_is_selected(search):
    _, res = search
    assert res.calibrations == 2  # one per family (population / lateral inhibition)
    trained = [r for r in res.rows if r.get("status") == "ok"]
    assert {r["point"] for r in trained} == {r["point"] for r in res.rows if r["feasible"]}
    best = max(r["accuracy"] for r in trained)
    assert res.selected["accuracy"] == best and res.selected["selected"]
    assert sum(r["selected"] for r in res.rows) == 1
    front = [r for r in res.rows if r["pareto"]]
    assert res.selected in front
    for r in front:  # nothing trained beats a Pareto point on all three
        for o in trained:
            assert not (o["accuracy"] >= r["accuracy"] and o["memory_kb"] <= r["memory_kb"]
                        and o["infer_energy_uj"] <= r["infer_energy_uj"] and o is not r
                        and (o["accuracy"], o["memory_kb"], o["infer_energy_uj"])
                        != (r["accuracy"], r["memory_kb"], r["infer_energy_uj"]))
    for r in trained:  # the analytical energy of a scaled family is close to the simulator's
        assert r["est_infer_energy_uj"] == pytest.approx(r["infer_energy_uj"], rel=0.1)


@pytest.mark.slow
def test_outputs(search):
    _, res = search
    with open(res.out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and {"memory_kb", "accuracy", "pareto", "selected"} <= set(rows[0])
    assert (res.out / "search.png").stat().st_size > 0
    assert "**Selected:**" in (res.out / "summary.md").read_text()


@pytest.mark.slow
def test_rerun_trains_nothing_again(search):
    p, res = search
    stats = sorted((res.out / "trained" / "points").glob("*/stats.json"))
    before = [s.stat().st_mtime_ns for s in stats]
    again = run_search(p, res.out, workers=1, progress=False)
    assert len(stats) == 5 and [s.stat().st_mtime_ns for s in stats] == before
    assert again.selected["point"] == res.selected["point"]


def test_scaled_activity_keeps_the_rate_per_neuron(tmp_path):
    cfg = load_config(BASE, ["data.train_samples=30", "data.test_samples=20",
                             "run.checkpoint_every=0", "run.trace_phases=[train,label,infer]"])
    run_experiment(cfg, tmp_path / "run", progress=False)
    spec, act = activity_of_run(tmp_path / "run")
    big = load_config(BASE, ["network.n_excitatory=800"])
    bspec = network_spec(big, build_network(big, 64))
    scaled = scale_activity(act["infer"], spec, bspec)
    assert scaled.rates["input"] == act["infer"].rates["input"]
    assert scaled.rates["exc"] == pytest.approx(2 * act["infer"].rates["exc"])
    assert scaled.active == {} and "exc" not in scaled.neurons
    assert estimate(big, bspec, {"infer": scaled})["phases"]["infer"]["energy_pj"] > 0


def test_bad_search_files(tmp_path, capsys):
    with pytest.raises(ConfigError, match="budgets.memory_kb"):
        load_search(write(tmp_path, budgets={"memory_kb": -1}))
    assert main(["search", str(write(tmp_path, grid={"network.n_excitatory": [0]}))]) == 2
    assert "point 0" in capsys.readouterr().err


def test_set_overrides_every_candidate(tmp_path):
    """`search --set`: the same file with another base value; the trained sweep inherits it."""
    p = write(tmp_path)
    sf, text = load_search(p, ["encoding.present_ms=120"])
    assert sf.set["encoding.present_ms"] == 120 and text.endswith("# --set encoding.present_ms=120\n")
    from accel_sim.sweep import expand

    assert {pt.config.encoding.present_ms for pt in expand(sf, p)} == {120}
    with pytest.raises(ConfigError, match="search file sweeps this key"):
        load_search(p, ["network.n_excitatory=30"])
