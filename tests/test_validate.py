"""`validate` performs exactly the checks `run` performs before its first sample: every
shipped file passes it, and every bad input that `run` rejects, `validate` rejects with
the same lines (and `run` writes nothing for it)."""
import json
import os
from pathlib import Path

import pytest
from conftest import requires_mnist

from accel_sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (ROOT / "configs").rglob("*.yaml"))
#: shipped files whose validation reads whole datasets (MNIST, Fashion-MNIST, N-MNIST)
_HEAVY = ("papers", "sweeps", "searches", "mnist_dc")
HAS_SHD = bool(os.environ.get("ACCEL_SIM_DATA")) and (
    Path(os.environ.get("ACCEL_SIM_DATA", "")) / "SHD").is_dir()


def _params():
    for p in SHIPPED:
        rel = p.relative_to(ROOT / "configs")
        marks = [pytest.mark.slow, requires_mnist] if any(h in str(rel) for h in _HEAVY) else []
        yield pytest.param(p, id=str(rel), marks=marks)


@pytest.mark.parametrize("path", list(_params()))
def test_every_shipped_file_passes_validate(path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the NIR example names its files relative to the checkout
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    if "shd" in path.name and not HAS_SHD:
        assert code == 2 and "SHD is not bundled" in err
        return
    assert code == 0, err
    assert out.startswith(f"{path}: OK (")


# ----------------------------------------------------------- validate == run
def _base(tmp_path: Path, model: str) -> dict:
    if model == "nir":
        return {"version": 1, "name": "bad", "data": {"dataset": "events", "path": str(
            ROOT / "tests/fixtures/nir/snntorch_input.npy")}, "encoding": {"dt_ms": 1.0,
            "present_ms": 30.0}, "network": {"model": "nir", "path": str(
            ROOT / "tests/fixtures/nir/snntorch.nir"), "dt_ms": 0.1,
            "nir_integration": {"lif": "euler"}, "nir_reset": {"lif": "subtract"}},
            "hardware": "edge", "energy": "generic_45nm"}
    net = {"model": model}
    net.update({"n_excitatory": 20} if model == "diehl_cook" else {"hidden_sizes": [20]})
    cfg = {"version": 1, "name": "bad", "data": {"dataset": "digits", "train_samples": 64,
           "test_samples": 32}, "network": net, "hardware": "edge", "energy": "generic_45nm"}
    if model == "surrogate":
        cfg["learning"] = {"batch_size": 32}
    return cfg


#: (family of the base config, overrides): inputs a run rejects before its first sample
BAD = [
    ("diehl_cook", ["network.n_exc=5"]),  # unknown key
    ("diehl_cook", ["learning.epochs=0"]),  # out of range
    ("diehl_cook", ["network.model=diehl_cok"]),  # unknown family
    ("diehl_cook", ["learning.rule=bptt"]),  # another family's learning rule
    ("diehl_cook", ["data.dataset=nmnist"]),  # a family's cross-section rule
    ("diehl_cook", ["data.root=/no/such/folder", "data.dataset=mnist"]),  # missing data
    ("diehl_cook", ["energy=null"]),  # a chip without a table
    ("diehl_cook", ["energy=configs/chips/edge.yaml"]),  # a chip file as the table
    ("diehl_cook", ["hardware.sync.barrier=false"]),  # timestep cannot model it
    ("diehl_cook", ["hardware.sync.barrier=false", "run.fidelity=event"]),
    ("diehl_cook", ["hardware.cores.neurons_per_core=2"]),  # too small a chip
    ("diehl_cook", ["hardware.cores.learning_unit=false"]),  # training without learning unit
    ("diehl_cook", ["network.init_model=/no/such/model.npz"]),  # the build reads it
    ("surrogate", ["learning.batch_size=1000"]),  # more than the training samples
    ("surrogate", ["network.state_format.kind=fixed"]),
    ("surrogate", ["run.phases=[train,label,infer]"]),
    ("nir", ["network.path=/no/such/net.nir"]),
    ("nir", ["hardware.cores.count=4", "hardware.cores.mesh_width=2",
             "hardware.cores.mesh_height=2", "hardware.cores.neurons_per_core=4"]),  # mapping
    ("nir", ["network.weights.kind=fixed", "network.weights.bits=4",
             "hardware.formats.weight_bits=8"]),
]


@pytest.mark.parametrize("model,overrides", BAD, ids=lambda x: ",".join(x) if isinstance(
    x, list) else x)
def test_validate_rejects_what_run_rejects_with_the_same_message(tmp_path, capsys, monkeypatch,
                                                                 model, overrides):
    monkeypatch.chdir(ROOT)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(json.dumps(_base(tmp_path, model)))
    sets = [a for o in overrides for a in ("--set", o)]
    assert main(["validate", str(cfg), *sets]) == 2
    said_by_validate = capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["run", str(cfg), *sets, "--out", str(out), "--no-progress"]) == 2
    said_by_run = capsys.readouterr().err
    assert said_by_run == said_by_validate
    assert said_by_run.startswith("accel-sim: error: ") and "Traceback" not in said_by_run
    assert not out.exists()  # nothing was written for a run that could not start


def test_each_base_config_is_valid_and_runs(tmp_path, capsys, monkeypatch):
    """The bad cases above fail because of their overrides, not their base."""
    monkeypatch.chdir(ROOT)
    for model in ("diehl_cook", "surrogate", "nir"):
        cfg = tmp_path / f"{model}.yaml"
        cfg.write_text(json.dumps(_base(tmp_path, model)))
        assert main(["validate", str(cfg)]) == 0, capsys.readouterr().err


def test_barrier_free_chips_need_simpy_and_simpy_runs_from_a_config(tmp_path, capsys):
    cfg = str(ROOT / "configs/default.yaml")
    sets = ["data.train_samples=10", "data.test_samples=10", "network.n_excitatory=10",
            "encoding.present_ms=20", "run.phases=[infer]"]

    def args(*more):
        return [a for s in (*sets, *more) for a in ("--set", s)]

    free = args("hardware.sync.barrier=false")
    assert main(["validate", cfg, *free]) == 2
    assert "hardware.sync.barrier: false) needs run.fidelity: simpy" in capsys.readouterr().err
    results = {}
    for name, extra in (("event", args("run.fidelity=event")),
                        ("simpy", args("run.fidelity=simpy")),
                        ("free", free + args("run.fidelity=simpy"))):
        out = tmp_path / name
        assert main(["run", cfg, *extra, "--out", str(out), "--no-progress"]) == 0
        stats = json.loads((out / "stats.json").read_text())
        hw = stats["hardware"]
        assert hw["fidelity"] == ("event" if name == "event" else "simpy")
        results[name] = hw["phases"]["infer"]
        steps = stats["frontend"]["infer"]["time_steps"]
    assert results["simpy"]["latency_cycles"] == results["event"]["latency_cycles"]  # exact
    assert results["simpy"]["counts"] == results["event"]["counts"]
    # without the barrier no core waits for the slowest one, and no barrier is counted
    assert results["free"]["latency_cycles"] < results["simpy"]["latency_cycles"]
    counted = dict(results["simpy"]["counts"])
    assert counted.pop("chip.barrier") == steps  # one per simulated step
    assert results["free"]["counts"] == counted
