"""Sharded chip replay: presentations cut into shards, replayed on worker processes (a real
process pool, a real Dask LocalCluster on loopback), merged in order: bit for bit the serial
replay, in the API, in a run (with a checkpoint and a resume) and in a sweep with fewer
replays than workers."""
import json

import numpy as np
import pytest
from conftest import run_killed_after

from accel_sim import ConfigError, SpikeTrace, load_config, load_hardware, run_experiment, simulate
from accel_sim.chip import Chip
from accel_sim.chip.chip import WorkerChips
from accel_sim.executors import LocalExecutor
from snn_frontend.spec import NetworkSpec, Population, Projection
from snn_frontend.trace import TraceBuilder, TraceError

SMALL = ["data.train_samples=30", "data.test_samples=40", "network.n_excitatory=40",
         "encoding.present_ms=60", "run.progress=false", "run.checkpoint_every=0",
         "run.trace_phases=[train, infer]", "hardware=edge", "energy=generic_45nm"]


def _trace(steps_per_presentation):
    """A trace of one input neuron spiking at every step of presentations of these lengths."""
    spec = NetworkSpec((Population("in", 1, "input"), Population("a", 1, "lif")),
                       (Projection("in", "a", "dense", 8),))
    tb = TraceBuilder({"spec": spec.to_dict()})
    for k, T in enumerate(steps_per_presentation):
        tb.add(k, 0, False, T, {"in": np.ones(T, int), "a": np.zeros(T, int)},
               {"in": np.zeros(T, int), "a": np.zeros(0, int)})
    return tb.build()


def test_shards_are_even_in_steps_and_select_keeps_the_presentations():
    tr = _trace([10, 10, 40, 10, 10, 10, 10])  # 100 steps
    assert tr.shard_bounds(2) == [(0, 3), (3, 7)]  # 60 / 40 steps: a cut after 50 steps
    assert tr.shard_bounds(10) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7)]
    part = tr.select(2, 4)
    assert part.n_presentations == 2 and part.n_steps == 50
    assert [p.n_steps for p in part] == [40, 10] and part.total("in") == 50
    assert [p.sample for p in part] == [2, 3]
    with pytest.raises(TraceError, match=r"\[5, 9\)"):
        tr.select(5, 9)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    out = tmp_path_factory.mktemp("shard") / "run"
    stats = run_experiment(load_config(None, SMALL), out)
    return out, stats


@pytest.fixture(scope="module")
def pool():
    ex = LocalExecutor(2)
    yield ex
    ex.close()


def _same(a, b):
    assert a.counts == b.counts
    assert (a.cycles, a.samples, a.presentations, a.time_steps, a.simpy_events) == \
        (b.cycles, b.samples, b.presentations, b.time_steps, b.simpy_events)
    assert a.presentation_cycles == b.presentation_cycles
    assert a.instances == b.instances and a.first_step_cycles == b.first_step_cycles


@pytest.mark.parametrize("phase", ["train", "infer"])
@pytest.mark.parametrize("chip,fidelity,presentations", [
    ("edge", "timestep", None), ("edge", "event", None), ("edge", "simpy", 8),
    pytest.param("loihi_like", "simpy", 5, marks=pytest.mark.slow)])
def test_a_sharded_replay_is_the_serial_one_bit_for_bit(traces, pool, phase, chip, fidelity,
                                                        presentations):
    """Training (learning events, whole-matrix passes) and inference traces of a real run;
    SimPy on the first presentations only (it is the slow one)."""
    trace = SpikeTrace.load(traces[0] / f"trace_{phase}")
    if presentations:
        trace = trace.select(0, presentations)
    hw = load_hardware(chip)
    serial = simulate(trace, hw, fidelity=fidelity)
    sharded = simulate(trace, hw, fidelity=fidelity, executor=pool)
    _same(serial, sharded)
    assert sharded.presentations == trace.n_presentations > 2
    assert len(trace.shard_bounds(pool.workers)) == 2


def test_a_barrier_free_chip_shards_too(traces, pool):
    trace = SpikeTrace.load(traces[0] / "trace_infer").select(0, 8)
    hw = load_hardware("edge", ["sync.barrier=false"])
    _same(simulate(trace, hw, fidelity="simpy"), simulate(trace, hw, fidelity="simpy",
                                                           executor=pool))


def test_sram_bank_states_shard_exactly(traces, pool):
    """Banks in retention wake by the end of their presentation: shards add up."""
    hw = load_hardware("edge", ["power.sram=retention_when_idle", "power.wake_cycles=2"])
    trace = SpikeTrace.load(traces[0] / "trace_train")
    serial = simulate(trace, hw, fidelity="event")
    _same(serial, simulate(trace, hw, fidelity="event", executor=pool))
    assert serial.counts["sram.wake"] > 0


def test_a_worker_keeps_the_chip_it_built_and_replays_on_it_as_on_a_new_one(traces, pool):
    """The second sharded replay of a chip (the next trace part of a run) runs on the
    chips its workers kept: the same counts and cycles, training then inference."""
    hw = load_hardware("edge")
    parts = [SpikeTrace.load(traces[0] / f"trace_{phase}") for phase in ("train", "infer")]
    chip = Chip(hw, parts[0].spec, "event")
    for part in parts + parts:
        _same(simulate(part, hw, fidelity="event"), chip.replay(part, "p", executor=pool))


def test_worker_chips_lend_a_kept_chip_once_and_only_for_its_token(traces):
    spec = SpikeTrace.load(traces[0] / "trace_infer").spec
    chip = Chip(load_hardware("edge"), spec, "timestep")
    kept = WorkerChips()
    first = kept.take(chip.recipe())
    assert first is not chip and first.token == chip.token
    second = kept.take(chip.recipe())  # the first is in use: another is built
    assert second is not first
    kept.give(first)
    assert kept.take(chip.recipe()) is first
    kept.give(first)
    other = Chip(load_hardware("edge"), spec, "timestep")
    assert kept.take(other.recipe()) is not first  # another chip's token: built anew
    kept.give(second)
    kept.give(Chip(load_hardware("edge"), spec, "timestep"))  # a newer token drops the old
    assert kept.take(chip.recipe()) is not second


def test_workers_argument_starts_and_stops_its_own_pool(traces):
    trace = SpikeTrace.load(traces[0] / "trace_infer")
    _same(simulate(trace, "edge", fidelity="event"),
          simulate(trace, "edge", fidelity="event", workers=2))


def test_a_run_with_chip_workers_writes_the_serial_runs_figures(traces, tmp_path):
    serial = traces[1]
    sharded = run_experiment(load_config(None, SMALL + ["run.chip_workers=2"]), tmp_path / "r")
    assert sharded["hardware"]["phases"] == serial["hardware"]["phases"]
    assert sharded["frontend"] == serial["frontend"]
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    # the workers' own replay seconds are recorded; the serial run has none
    assert info["timing_s"]["simulate"] >= 0 and info["timing_s"]["simulate_workers"] > 0
    assert "simulate_workers" not in json.loads((traces[0] / "run.json").read_text())[
        "timing_s"]
    # peak memory: this process's, and the largest worker's once the pool has stopped
    assert info["peak_rss_mib"]["this_process"] > 10
    assert info["peak_rss_mib"]["largest_child"] > 10


@pytest.mark.slow
def test_a_resumed_sharded_run_ends_as_the_uninterrupted_one(traces, tmp_path, monkeypatch):
    """A checkpoint waits for the shards in flight; the resumed run goes on from it."""
    from accel_sim import resume_experiment

    cfg = load_config(None, SMALL + ["run.chip_workers=2", "run.checkpoint_every=10"])
    run_killed_after(cfg, tmp_path / "r", monkeypatch, samples=15)  # checkpoint at 10
    resumed = resume_experiment(tmp_path / "r", progress=False)
    assert resumed["hardware"]["phases"] == traces[1]["hardware"]["phases"]


def test_chip_executor_settings_are_checked():
    with pytest.raises(ConfigError, match="chip_scheduler is the address of a Dask scheduler"):
        load_config(None, ["run.chip_scheduler=tcp://127.0.0.1:1"])
    with pytest.raises(ConfigError, match="chip_executor dask needs chip_workers"):
        load_config(None, ["run.chip_executor=dask"])


@pytest.mark.slow
def test_a_dask_cluster_shards_to_the_serial_result(traces):
    pytest.importorskip("distributed")
    from accel_sim.executors import DaskExecutor

    trace = SpikeTrace.load(traces[0] / "trace_train")
    hw = load_hardware("edge")
    ex = DaskExecutor(2)
    try:
        _same(simulate(trace, hw, fidelity="event"),
              simulate(trace, hw, fidelity="event", executor=ex))
    finally:
        ex.close()


@pytest.mark.slow
def test_a_sweep_with_one_replay_spreads_it_over_its_workers(tmp_path):
    """One chip x two energy tables: one replay, two workers: two shards, merged; every
    point equals the same sweep on one worker (no shards)."""
    from accel_sim.sweep import run_sweep

    body = {"version": 1, "base": str(__import__("pathlib").Path(__file__).resolve()
                                       .parents[1] / "configs" / "default.yaml"),
            "set": {"data.train_samples": 20, "data.label_samples": None,
                    "data.test_samples": 30, "run.checkpoint_every": 0},
            "grid": {"energy": ["generic_45nm", "loihi_2018"]}}
    p = tmp_path / "sw.yaml"
    p.write_text(json.dumps(body))
    two = run_sweep(p, tmp_path / "two", workers=2, progress=False)
    one = run_sweep(p, tmp_path / "one", workers=1, progress=False)
    assert two.replays == one.replays == 1
    for a, b in zip(one.rows, two.rows):
        sa = json.loads((tmp_path / "one" / "points" / a["point"] / "stats.json").read_text())
        sb = json.loads((tmp_path / "two" / "points" / b["point"] / "stats.json").read_text())
        assert sa == sb


@pytest.mark.slow
def test_cli_chip_workers_and_its_errors(tmp_path, capsys):
    """--chip-workers sets run.chip_workers; --resume takes nothing else; --scheduler
    means Dask, and an unreachable one is a one-line error."""
    from accel_sim.cli import main

    sets = [a for s in SMALL for a in ("--set", s)]
    cfg = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "configs" /
              "default.yaml")
    assert main(["run", cfg, *sets, "--chip-workers", "2", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    assert "chip_workers: 2" in (tmp_path / "r" / "config.resolved.yaml").read_text()
    capsys.readouterr()
    assert main(["run", "--resume", str(tmp_path / "r"), "--chip-workers", "2"]) == 2
    assert "--resume takes only the run directory" in capsys.readouterr().err
    assert main(["run", cfg, *sets, "--scheduler", "tcp://127.0.0.1:1", "--out",
                 str(tmp_path / "s"), "--no-progress"]) == 2
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:1" in capsys.readouterr().err
