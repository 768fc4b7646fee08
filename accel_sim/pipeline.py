"""One run, end to end, as a composition of small steps:

    load data -> build the network and its spec -> set up the chip (checked first)
    -> run the frontend phases (each streams its SpikeTrace into the chip as it goes)
    -> price the phases -> write the run directory

`run_experiment(cfg, out_dir)` is the library entry point behind `accel-sim run`.
Training writes a checkpoint every `run.checkpoint_every` samples (weights, thresholds,
network state, counts, position, the chip's counts so far; class-incremental runs: after
every task, with the accuracies so far); `resume_experiment(run_dir)` continues from it
and ends with the same weights as an uninterrupted run, because the input spikes of
every presentation come from a counter-based RNG keyed by (seed, sample, attempt) and
the whole state is in the checkpoint.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snn_frontend.counts import FrontendCounts
from snn_frontend.datasets import Dataset, class_tasks, load_dataset, select, split_validation
from snn_frontend.labelling import assign_labels, predict
from snn_frontend.network import DiehlCookNetwork
from snn_frontend.spec import NetworkSpec
from snn_frontend.state import DCState
from snn_frontend.trace import TraceBuilder

from .config import Config, load_config
from .costing import ChipSetup, hardware_stats, prepare_chip, reprice, state_bits
from .errors import RunError
from .memory import network_memory
from .rundir import (CHECKPOINT, MODEL, default_run_dir, finished, load_checkpoint, prepare_dir,
                     read_npz, run_info, save_npz, write_json, write_outputs)

__all__ = ["run_experiment", "resume_experiment", "reprice", "default_run_dir", "load_data",
           "RunData", "build_network", "network_spec"]

_PHASE_UID = {"train": 1, "label": 2, "infer": 3}


def _uid(phase: str, epoch: int, index: int) -> int:
    return (_PHASE_UID[phase] << 48) | (epoch << 32) | index


@dataclass
class RunData:
    train: Dataset
    label: Dataset
    test: Dataset
    n_classes: int

    @property
    def n_in(self) -> int:
        return self.train.n_pixels


def load_data(cfg: Config) -> RunData:
    d = cfg.data
    train_full = load_dataset(d.dataset, "train", d.root)
    if d.evaluate_on == "validation":
        train_full, test_full = split_validation(train_full, d.validation_samples)
    else:
        test_full = load_dataset(d.dataset, "test", d.root)
    order = "class_incremental" if d.protocol == "class_incremental" else "dataset"
    train = select(train_full, n=d.train_samples, classes=d.classes, order=order)
    label = train if d.label_samples is None else select(train, n=d.label_samples)
    test = select(test_full, n=d.test_samples, classes=d.classes, order=order)
    n_classes = int(max(train_full.labels.max(), test_full.labels.max())) + 1
    return RunData(train, label, test, n_classes)


# ------------------------------------------------------------------------- network
def build_network(cfg: Config, n_in: int) -> DiehlCookNetwork:
    """The frontend network of `network.model`, initialised (from `init_model` if given)."""
    net = DiehlCookNetwork.from_config(cfg, n_in)
    if cfg.network.init_model:
        z = read_npz(Path(cfg.network.init_model), "network.init_model",
                     {"weights": net.weights.shape, "theta": net.state.theta.shape})
        net.weights[...] = z["weights"]
        net.state.theta[:] = z["theta"]
    return net


def network_spec(cfg: Config, net: DiehlCookNetwork) -> NetworkSpec:
    """The network as the chip sees it."""
    fmt = cfg.network.state_format
    return net.spec(cfg.network.weights.storage_bits, fmt.bits if fmt.kind == "fixed" else None,
                    model=cfg.network.model)


def _progress_enabled(cfg: Config, progress: bool | None) -> bool:
    if progress is not None:
        return progress
    if cfg.run.progress is not None:
        return cfg.run.progress
    return sys.stderr.isatty()


# ------------------------------------------------------------------------- a run
@dataclass
class Run:
    """Everything the steps of one run share."""

    cfg: Config
    out: Path
    data: RunData
    net: DiehlCookNetwork
    spec: NetworkSpec
    setup: ChipSetup | None
    show: bool
    timing: dict[str, float] = field(default_factory=dict)
    counts: dict[str, FrontendCounts] = field(default_factory=dict)
    chip_results: dict = field(default_factory=dict)
    resumed: bool = False


@dataclass
class _Phase:
    """One frontend phase in progress: its counts, its trace (streamed to the chip and/or
    saved), and the chip's replay of it."""

    counts: FrontendCounts
    trace: TraceBuilder | None
    replay: object | None

    def close(self, run: Run, name: str, seconds: float) -> None:
        if self.trace is not None:
            self.trace.close()
        wall = self.replay.result.wall_s if self.replay is not None else 0.0
        run.timing[name] = seconds - wall  # the frontend's own time
        run.counts[name] = self.counts
        if self.replay is not None:
            run.chip_results[name] = self.replay.finish()


def open_phase(run: Run, name: str, *, learn: bool) -> _Phase:
    """Counts, and a trace streamed into the chip (and saved when run.trace_phases asks)."""
    replay = run.setup.chip.phase(name) if run.setup is not None else None
    save = name in run.cfg.run.trace_phases
    trace = None
    if save or replay is not None:
        meta = dict(run.net.trace_meta(run.spec, learn=learn), phase=name,
                    model=run.cfg.network.model, seed=run.cfg.seed)
        trace = TraceBuilder(meta, run.net.events() if learn else (),
                             out_dir=run.out / f"trace_{name}" if save else None,
                             on_part=replay.consume if replay is not None else None,
                             part_size=512)
    return _Phase(FrontendCounts(), trace, replay)


def train(run: Run, ckpt: dict | None) -> None:
    """Train on the training set (epochs, optional shuffle), checkpointing as configured."""
    cfg, net, data = run.cfg, run.net, run.data
    n = len(data.train)
    total = cfg.learning.epochs * n
    ph = open_phase(run, "train", learn=True)
    phases = {"train": ph}
    start, elapsed = restore(run, ckpt, phases) if ckpt is not None else (0, 0.0)
    t0 = time.perf_counter()
    every = cfg.run.checkpoint_every
    orders: dict[int, np.ndarray] = {}
    with tqdm(total=total, initial=start, desc="train", unit="sample", disable=not run.show,
              dynamic_ncols=True) as bar:
        for g in range(start, total):
            epoch, k = divmod(g, n)
            if epoch not in orders:
                orders = {epoch: (np.random.default_rng([cfg.seed, 1, epoch]).permutation(n)
                                  if cfg.data.shuffle else np.arange(n))}
            idx = int(orders[epoch][k])
            net.train_sample(data.train.images[idx], _uid("train", epoch, idx), sample=g,
                             counts=ph.counts, trace=ph.trace)
            bar.update(1)
            if every and (g + 1) % every == 0 and g + 1 < total:
                checkpoint(run, g + 1, elapsed + time.perf_counter() - t0, phases)
    elapsed += time.perf_counter() - t0
    if ph.trace is not None:
        ph.trace.flush()
    checkpoint(run, total, elapsed, phases)
    ph.close(run, "train", elapsed)


def infer(run: Run, name: str, ds: Dataset) -> np.ndarray:
    """Present a dataset with plasticity off; returns the spike counts (samples x neurons)."""
    ph = open_phase(run, name, learn=False)
    t0 = time.perf_counter()
    with tqdm(total=len(ds), desc=name, unit="sample", disable=not run.show,
              dynamic_ncols=True) as bar:
        resp = run.net.infer(ds.images, _uid(name, 0, 0), threads=run.cfg.run.threads,
                             counts=ph.counts, trace=ph.trace, on_sample=bar.update)
    ph.close(run, name, time.perf_counter() - t0)
    return resp


def iid(run: Run, ckpt: dict | None, accuracy: dict) -> np.ndarray | None:
    """The D&C protocol: train, label on the labelling set, test."""
    phases, data, assignments = run.cfg.run.phases, run.data, None
    if "train" in phases:
        train(run, ckpt)
    if "label" in phases:
        resp = infer(run, "label", data.label)
        assignments = assign_labels(resp, data.label.labels, data.n_classes)
        pred = predict(resp, assignments, data.n_classes)
        accuracy["label_set"] = float((pred == data.label.labels).mean())
    if "infer" in phases:
        resp = infer(run, "infer", data.test)
        if assignments is not None:
            pred = predict(resp, assignments, data.n_classes)
            accuracy["test"] = float((pred == data.test.labels).mean())
            accuracy["n_test"] = len(data.test)
    return assignments


def continual(run: Run, ckpt: dict | None, accuracy: dict) -> np.ndarray:
    """Class-incremental learning: train task by task (one class each, equal samples, no
    re-feeding); after each task, label on the learned tasks' training samples and test on
    the learned classes: accuracy on the newest task and on the earlier ones. With
    checkpoints on, a checkpoint follows every task."""
    cfg, net, data = run.cfg, run.net, run.data
    tasks = class_tasks(data.train)
    phases = {name: open_phase(run, name, learn=name == "train")
              for name in ("train", "label", "infer")}
    timing = dict.fromkeys(phases, 0.0)
    rows, first, assign = [], 0, None
    if ckpt is not None:
        first, _ = restore(run, ckpt, phases)
        rows = json.loads(str(ckpt["rows_json"]))
        timing = json.loads(str(ckpt["timing_json"]))
        assign = np.asarray(json.loads(str(ckpt["assign_json"])), np.int64)
    g = sum(sl.stop - sl.start for _, sl in tasks[:first])
    with tqdm(total=len(data.train), initial=g, desc="tasks", unit="sample",
              disable=not run.show, dynamic_ncols=True) as bar:
        for k, (cls, sl) in enumerate(tasks[first:], start=first):
            t0 = time.perf_counter()
            for idx in range(sl.start, sl.stop):
                net.train_sample(data.train.images[idx], _uid("train", 0, idx), sample=g,
                                 counts=phases["train"].counts, trace=phases["train"].trace)
                g += 1
                bar.update(1)
            timing["train"] += time.perf_counter() - t0
            learned = [c for c, _ in tasks[: k + 1]]
            lab = np.concatenate([np.arange(s.start, s.stop) for _, s in tasks[: k + 1]])
            t0 = time.perf_counter()
            resp = net.infer(data.train.images[lab], _uid("label", k, 0), threads=cfg.run.threads,
                             counts=phases["label"].counts, trace=phases["label"].trace)
            assign = assign_labels(resp, data.train.labels[lab], data.n_classes)
            timing["label"] += time.perf_counter() - t0
            test = np.flatnonzero(np.isin(data.test.labels, learned))
            t0 = time.perf_counter()
            resp = net.infer(data.test.images[test], _uid("infer", k, 0), threads=cfg.run.threads,
                             counts=phases["infer"].counts, trace=phases["infer"].trace)
            timing["infer"] += time.perf_counter() - t0
            labels = data.test.labels[test]
            ok = predict(resp, assign, data.n_classes) == labels
            rows.append({"task": k, "class": int(cls), "samples": int(sl.stop - sl.start),
                         "newest": float(ok[labels == cls].mean()),
                         "earlier": float(ok[labels != cls].mean()) if k else None,
                         "all_learned": float(ok.mean()), "n_test": int(len(test))})
            if cfg.run.checkpoint_every:
                checkpoint(run, k + 1, 0.0, phases,
                           dict(rows_json=rows, timing_json=timing, assign_json=assign.tolist()))
    for name, ph in phases.items():
        ph.close(run, name, timing[name])
    earlier = [r["earlier"] for r in rows if r["earlier"] is not None]
    accuracy.update(tasks=rows, test=rows[-1]["all_learned"], n_test=rows[-1]["n_test"],
                    newest_mean=float(np.mean([r["newest"] for r in rows])),
                    earlier_mean=float(np.mean(earlier)) if earlier else None)
    return assign


# ---------------------------------------------------------------------- checkpoints
def checkpoint(run: Run, position: int, elapsed: float, phases: dict[str, _Phase],
               extra: dict | None = None) -> None:
    """Save the network and, per phase, its counts, trace parts and chip replay state."""
    net = run.net
    arrays = {f"state_{k}": v for k, v in net.state.arrays().items()}
    arrays.update(weights=net.weights, position=np.int64(position),
                  last_activity=net.last_activity, elapsed_s=np.float64(elapsed))
    arrays.update({k: np.array(json.dumps(v)) for k, v in (extra or {}).items()})
    for name, ph in phases.items():
        arrays[f"counts_json_{name}"] = np.array(json.dumps(ph.counts.as_dict()))
        if ph.trace is not None:  # parts up to here belong to the checkpoint
            ph.trace.flush()
            arrays[f"trace_parts_{name}"] = np.int64(ph.trace.parts_written)
        if ph.replay is not None:
            arrays[f"chip_json_{name}"] = np.array(json.dumps(ph.replay.snapshot()))
    save_npz(run.out / CHECKPOINT, arrays)


def restore(run: Run, ckpt: dict, phases: dict[str, _Phase]) -> tuple[int, float]:
    """Undo everything done after the checkpoint; returns (position, elapsed seconds)."""
    net = run.net
    try:
        net.weights[...] = ckpt["weights"]
        net.state = DCState.from_arrays({k[len("state_"):]: v for k, v in ckpt.items()
                                         if k.startswith("state_")})
        net.last_activity[:] = ckpt["last_activity"]
        for name, ph in phases.items():
            for k, v in json.loads(str(ckpt[f"counts_json_{name}"])).items():
                setattr(ph.counts, k, v)
            if ph.trace is not None:  # drop parts written after the checkpoint
                ph.trace.truncate_parts(int(ckpt.get(f"trace_parts_{name}", 0)))
            if ph.replay is not None and f"chip_json_{name}" in ckpt:
                ph.replay.restore(json.loads(str(ckpt[f"chip_json_{name}"])))
    except (KeyError, ValueError, TypeError) as exc:
        raise RunError(f"{run.out / CHECKPOINT} does not match this run: {exc}") from None
    run.resumed = True
    return int(ckpt["position"]), float(ckpt["elapsed_s"])


def _checkpoint_shapes(net: DiehlCookNetwork) -> dict:
    shapes = {"weights": net.weights.shape, "last_activity": net.last_activity.shape}
    shapes.update({f"state_{k}": v.shape for k, v in net.state.arrays().items()})
    return shapes


# ------------------------------------------------------------------------- output
def collect_stats(run: Run, accuracy: dict, assignments) -> dict:
    cfg, net = run.cfg, run.net
    stats: dict = {"accuracy": accuracy,
                   "frontend": {p: dict(c.as_dict(), per_sample=c.per_sample())
                                for p, c in run.counts.items()},
                   "memory": network_memory(run.spec, cfg.network.state_format.storage_bits)}
    if run.setup is not None:
        results = {p: r.as_dict() for p, r in run.chip_results.items()}
        stats["hardware"] = hardware_stats(cfg, run.setup, results, state_bits(cfg))
        run.timing["simulate"] = sum(r.wall_s for r in run.chip_results.values())
    theta = net.state.theta
    stats["model"] = {
        "network": cfg.network.model, "n_input": run.data.n_in,
        "n_excitatory": cfg.network.n_excitatory, "n_classes": run.data.n_classes,
        "assigned_neurons": int((assignments >= 0).sum()) if assignments is not None else 0,
        "theta_mv": {"min": float(theta.min()), "mean": float(theta.mean()),
                     "max": float(theta.max())},
    }
    return stats


def _samples(cfg: Config, data: RunData) -> dict:
    ph = cfg.run.phases
    return {"train": len(data.train) * cfg.learning.epochs if "train" in ph else 0,
            "label": len(data.label) if "label" in ph else 0,
            "infer": len(data.test) if "infer" in ph else 0}


def _write_run_json(run: Run, started: str, ended: str | None) -> dict:
    info = run_info(run.cfg, backend=run.net.backend, samples=_samples(run.cfg, run.data),
                    timing=run.timing, started=started, ended=ended, resumed=run.resumed)
    write_json(run.out / "run.json", info)
    return info


def _execute(cfg: Config, out: Path, progress: bool | None, resume: bool) -> dict:
    if cfg.network.model == "surrogate":  # the supervised protocol (accel_sim/supervised.py)
        from .supervised import execute

        return execute(cfg, out, _progress_enabled(cfg, progress), resume)
    if cfg.network.model == "nir":  # an imported network's inference (accel_sim/nir_run.py)
        from .nir_run import execute as execute_nir

        return execute_nir(cfg, out, _progress_enabled(cfg, progress), resume)
    started = datetime.now(timezone.utc).isoformat()
    t0 = time.perf_counter()
    data = load_data(cfg)
    load_s = time.perf_counter() - t0
    net = build_network(cfg, data.n_in)
    spec = network_spec(cfg, net)
    setup = prepare_chip(cfg, spec)  # an impossible chip or table fails here, before training
    run = Run(cfg, out, data, net, spec, setup, _progress_enabled(cfg, progress),
              timing={"load": load_s})
    ckpt = load_checkpoint(out, _checkpoint_shapes(net)) if resume else None
    if net.backend != "cython":
        print(f"accel-sim: the compiled kernels are not built; running the slow NumPy "
              f"reference (reinstall with a C compiler: pip install -e .)", file=sys.stderr)
    _write_run_json(run, started, None)
    accuracy: dict = {}
    if cfg.data.protocol == "class_incremental":
        assignments = continual(run, ckpt, accuracy)
    else:
        assignments = iid(run, ckpt, accuracy)
    stats = collect_stats(run, accuracy, assignments)
    save_npz(out / MODEL, {"weights": net.weights, "theta": net.state.theta,
                           "assignments": assignments if assignments is not None
                           else np.zeros(0)})
    write_json(out / "stats.json", stats)
    info = _write_run_json(run, started, datetime.now(timezone.utc).isoformat())
    write_outputs(out, stats, info)
    return stats


def run_experiment(cfg: Config, out_dir: str | os.PathLike, *, progress: bool | None = None) -> dict:
    """Run every configured phase and write the run directory; returns stats."""
    out = Path(out_dir)
    if finished(out) or (out / CHECKPOINT).exists():
        raise RunError(f"{out} already holds a run; choose another --out or use --resume {out}")
    prepare_dir(out, cfg)
    return _execute(cfg, out, progress, resume=False)


def resume_experiment(run_dir: str | os.PathLike, *, progress: bool | None = None) -> dict:
    """Continue a killed run from its last checkpoint (same result as uninterrupted)."""
    out = Path(run_dir)
    cfg_path = out / "config.resolved.yaml"
    if not cfg_path.is_file():
        raise RunError(f"{out} is not a run directory (no config.resolved.yaml)")
    if finished(out):
        raise RunError(f"{out} is finished (stats.json is written); there is nothing to resume")
    return _execute(load_config(cfg_path), out, progress, resume=True)
