"""Network families are plug-ins: a family written in tests/plugin_family.py (Poisson input
-> one LIF layer with a fixed random weight matrix) runs through `validate`, `run`,
`--resume`, `sweep`, `estimate` and `export` without any module of the package naming it.
And the registries are the one source of the config schema."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accel_sim import load_config, registry, run_experiment
from accel_sim.cli import main
from accel_sim.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin():
    import plugin_family  # registers network.model: poisson_lif

    return plugin_family


def _config(tmp_path: Path, **run) -> Path:
    cfg = {"version": 1, "name": "plif", "data": {"dataset": "digits", "test_samples": 30},
           "network": {"model": "poisson_lif", "n_neurons": 24}, "hardware": "edge",
           "energy": "generic_45nm", "run": {"trace_phases": ["infer"], **run}}
    path = tmp_path / "plif.yaml"
    path.write_text(json.dumps(cfg))
    return path


def test_no_module_of_the_package_names_the_plugin_family():
    hits = [p for p in (ROOT / "accel_sim").rglob("*.py") if "poisson_lif" in p.read_text()]
    assert hits == []


def test_validate_and_run_a_registered_family(plugin, tmp_path, capsys):
    path = _config(tmp_path)
    assert main(["validate", str(path)]) == 0
    assert "OK (digits: poisson_lif network 64-24; chip edge" in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    front = stats["frontend"]["infer"]
    assert front["samples"] == 30 and front["steps"] == 30 * 20
    chip = stats["hardware"]["phases"]["infer"]["counts"]
    assert chip["chip.input_spike"] == front["spikes"]["input"] > 0  # every input spike
    assert chip["core.spike_out"] == front["spikes"]["lif"] > 0
    assert chip["core.synop"] == front["spikes"]["input"] * 24  # dense: one per target
    assert stats["memory"]["weights"] == {"input->lif": 64 * 24}
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["model"] == "poisson_lif" and info["samples"] == {"infer": 30}


def test_the_family_owns_its_config_section(plugin, tmp_path):
    path = _config(tmp_path)
    cfg = load_config(path, ["network.tau_ms=5"])
    assert type(cfg.network).__name__ == "PoissonLifNetwork" and cfg.network.tau_ms == 5
    assert cfg.run.phases == ["infer"] and cfg.encoding.present_ms == 20.0  # its defaults
    with pytest.raises(ConfigError) as e:  # another family's key is unknown here
        load_config(path, ["network.n_excitatory=5"])
    assert e.value.problems == ["network.n_excitatory: unknown key; known keys: model, weights, "
                                "state_format, n_neurons, rate_hz, tau_ms, weight_scale"]
    with pytest.raises(ConfigError) as e:  # its own cross-section rule
        load_config(path, ["data.dataset=mnist"])
    assert e.value.problems == ["data.dataset: poisson_lif reads the digits"]
    with pytest.raises(ConfigError) as e:  # the chip-fit check asks the family
        load_config(path, ["network.n_neurons=5000"])
    assert e.value.infeasible and "the network has 5000 neurons" in e.value.problems[0]


def test_resume_of_the_family_equals_an_uninterrupted_run(plugin, tmp_path, monkeypatch):
    path = _config(tmp_path, checkpoint_every=10)
    cfg = load_config(path)
    full = run_experiment(cfg, tmp_path / "full")
    calls = {"n": 0}
    real = plugin.present

    def dies(*a, **k):
        calls["n"] += 1
        if calls["n"] > 17:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(plugin, "present", dies)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path / "killed")
    monkeypatch.setattr(plugin, "present", real)
    with np.load(tmp_path / "killed" / "checkpoint.npz") as z:
        assert int(z["position"]) == 10
    resumed = main(["run", "--resume", str(tmp_path / "killed"), "--no-progress"])
    assert resumed == 0
    again = json.loads((tmp_path / "killed" / "stats.json").read_text())
    assert again["frontend"] == json.loads(json.dumps(full["frontend"]))
    assert again["hardware"]["phases"] == json.loads(json.dumps(full["hardware"]["phases"]))


@pytest.mark.slow
def test_a_sweep_of_the_family_runs_on_worker_processes(plugin, tmp_path):
    from accel_sim.sweep import run_sweep

    base = _config(tmp_path)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(json.dumps({"version": 1, "base": str(base),
                                 "grid": {"hardware.noc.cast": ["unicast", "multicast"],
                                          "network.n_neurons": [16, 5000]}}))
    res = run_sweep(sweep, tmp_path / "sw", workers=2, progress=False)  # spawned workers
    status = {(r["hardware.noc.cast"], r["network.n_neurons"]): r["status"] for r in res.rows}
    assert status == {("unicast", 16): "ok", ("multicast", 16): "ok",
                      ("unicast", 5000): "infeasible", ("multicast", 5000): "infeasible"}
    assert res.frontend_runs == 1 and res.replays == 2
    assert main(["validate", str(sweep)]) == 0


def test_estimate_of_the_family_is_close_to_its_run(plugin, tmp_path, capsys):
    path = _config(tmp_path)
    run = run_experiment(load_config(path), tmp_path / "r")
    assert main(["estimate", str(path), "--from-run", str(tmp_path / "r"), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["phases"]["infer"]["counts"]
    sim = run["hardware"]["phases"]["infer"]["counts"]
    for action in ("chip.input_spike", "core.synop", "core.spike_out"):
        assert est[action] == pytest.approx(sim[action], rel=1e-9), action


def test_export_of_a_family_without_a_nir_form_is_a_clear_error(plugin, tmp_path, capsys):
    run_experiment(load_config(_config(tmp_path)), tmp_path / "r")
    assert main(["export", str(tmp_path / "r")]) == 2
    assert "poisson_lif networks have no NIR form" in capsys.readouterr().err


def test_an_unregistered_model_is_named_with_the_known_ones(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(None, ["network.model=poisson_lyf"])
    (line,) = e.value.problems
    assert line.startswith("network.model: unknown model 'poisson_lyf'")
    assert "diehl_cook, fspinn, spikedyn, asp, surrogate, nir" in line


def test_the_schema_takes_fidelities_and_families_from_the_registries():
    from accel_sim.config import config_model

    model = config_model()
    fid = model.model_fields["run"].annotation.model_fields["fidelity"].annotation
    assert fid.__args__ == tuple(registry.fidelities()) == ("timestep", "event", "simpy")
    assert set(registry.model_names()) >= {"diehl_cook", "fspinn", "spikedyn", "asp",
                                            "surrogate", "nir"}
    assert load_config(None, ["run.fidelity=simpy", "hardware=edge",
                              "energy=generic_45nm"]).run.fidelity == "simpy"


def test_a_second_family_cannot_take_a_registered_model(plugin):
    dup = plugin.PoissonLifFamily()
    dup.name = "other"
    with pytest.raises(ValueError, match="belongs to family 'poisson_lif' already"):
        registry.register_family(dup)


def test_a_fresh_process_knows_only_what_it_imports():
    """A plug-in is registered where its module is imported: a process that did not import
    it refuses its configs (workers import the plug-ins they are handed)."""
    code = ("from accel_sim import load_config\n"
            "try:\n    load_config(None, ['network.model=poisson_lif'])\n"
            "except Exception as e:\n    print(type(e).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT / "tests", check=True).stdout
    assert out.strip() == "ConfigError"
