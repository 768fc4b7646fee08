"""The STDP family's protocols, on the run driver's phases:

- iid (Diehl & Cook): train on the training set (epochs, checkpoints every
  `run.checkpoint_every` samples), label the neurons on the labelling set, test;
- class-incremental (SpikeDyn): tasks of one class each, trained in turn without
  re-feeding; after each task the learned tasks are labelled and tested (accuracy on the
  newest task and on the earlier ones), and a checkpoint follows.

Resuming gives the uninterrupted result: the input spikes of every presentation come from
a counter-based RNG keyed by (seed, sample, attempt), and the whole state is in the
checkpoint.
"""
from __future__ import annotations

import numpy as np

from snn_frontend.datasets import Dataset, class_tasks
from snn_frontend.labelling import assign_labels, predict

from ...run.context import Run

__all__ = ["iid", "continual"]

_PHASE_UID = {"train": 1, "label": 2, "infer": 3}


def _uid(phase: str, epoch: int, index: int) -> int:
    """The RNG key of a presentation's input spikes."""
    return (_PHASE_UID[phase] << 48) | (epoch << 32) | index


def _order(cfg, n: int, epoch: int) -> np.ndarray:
    """The training order of an epoch (file order, or reshuffled with the run seed)."""
    if cfg.data.shuffle:
        return np.random.default_rng([cfg.seed, 1, epoch]).permutation(n)
    return np.arange(n)


def train(run: Run) -> None:
    """Train on the training set, checkpointing as configured (and at the end)."""
    cfg, net, data = run.cfg, run.net, run.data
    n = len(data.train)
    total = cfg.learning.epochs * n
    ph = run.open_phase("train", learn=True)
    orders: dict[int, np.ndarray] = {}
    with ph, run.bar(total, "train", initial=run.position) as bar:
        for g in range(run.position, total):
            epoch, k = divmod(g, n)
            if epoch not in orders:
                orders = {epoch: _order(cfg, n, epoch)}
            idx = int(orders[epoch][k])
            net.train_sample(data.train.images[idx], _uid("train", epoch, idx), sample=g,
                             counts=ph.counts, trace=ph.trace)
            bar.update(1)
            if run.checkpoint_due(g + 1, total):
                run.checkpoint(g + 1)
        if cfg.run.checkpoint_every:  # training done: a kill while testing resumes here
            run.checkpoint(total)
    ph.close()


def infer(run: Run, name: str, ds: Dataset) -> np.ndarray:
    """Present a dataset with plasticity off; returns the spike counts (samples x neurons)."""
    with run.phase(name, learn=False) as ph, run.bar(len(ds), name) as bar:
        return run.net.infer(ds.images, _uid(name, 0, 0), threads=run.cfg.run.threads,
                             counts=ph.counts, trace=ph.trace, on_sample=bar.update)


def iid(run: Run) -> dict:
    """Train, label on the labelling set, test."""
    phases, data, accuracy = run.cfg.run.phases, run.data, {}
    assignments = None
    if "train" in phases:
        train(run)
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
    run.results["assignments"] = assignments
    return accuracy


def continual(run: Run) -> dict:
    """Class-incremental learning: task by task, each evaluated on the classes learned so
    far; a checkpoint after every task (with checkpoints on)."""
    data = run.data
    tasks = class_tasks(data.train)
    phases = {name: run.open_phase(name, learn=name == "train")
              for name in ("train", "label", "infer")}
    rows = list(run.extra.get("rows", []))
    assign = np.asarray(run.extra["assign"], np.int64) if "assign" in run.extra else None
    done = sum(sl.stop - sl.start for _, sl in tasks[:run.position])
    with run.bar(len(data.train), "tasks", initial=done) as bar:
        for k in range(run.position, len(tasks)):
            assign = _task(run, phases, tasks, k, rows, bar)
            if run.cfg.run.checkpoint_every:
                run.checkpoint(k + 1, {"rows": rows, "assign": assign.tolist()})
    for ph in phases.values():
        ph.close()
    run.results["assignments"] = assign
    earlier = [r["earlier"] for r in rows if r["earlier"] is not None]
    return {"tasks": rows, "test": rows[-1]["all_learned"], "n_test": rows[-1]["n_test"],
            "newest_mean": float(np.mean([r["newest"] for r in rows])),
            "earlier_mean": float(np.mean(earlier)) if earlier else None}


def _task(run: Run, phases: dict, tasks: list, k: int, rows: list, bar) -> np.ndarray:
    """Train task k, label on the learned tasks' training samples, test on their classes;
    appends the task's row and returns the neurons' labels."""
    cfg, net, data = run.cfg, run.net, run.data
    cls, sl = tasks[k]
    g = sum(s.stop - s.start for _, s in tasks[:k])
    train = phases["train"]
    with train:
        for idx in range(sl.start, sl.stop):
            net.train_sample(data.train.images[idx], _uid("train", 0, idx), sample=g,
                             counts=train.counts, trace=train.trace)
            g += 1
            bar.update(1)
    learned = [c for c, _ in tasks[: k + 1]]
    lab = np.concatenate([np.arange(s.start, s.stop) for _, s in tasks[: k + 1]])
    with phases["label"] as ph:
        resp = net.infer(data.train.images[lab], _uid("label", k, 0), threads=cfg.run.threads,
                         counts=ph.counts, trace=ph.trace)
    assign = assign_labels(resp, data.train.labels[lab], data.n_classes)
    test = np.flatnonzero(np.isin(data.test.labels, learned))
    with phases["infer"] as ph:
        resp = net.infer(data.test.images[test], _uid("infer", k, 0), threads=cfg.run.threads,
                         counts=ph.counts, trace=ph.trace)
    labels = data.test.labels[test]
    ok = predict(resp, assign, data.n_classes) == labels
    rows.append({"task": k, "class": int(cls), "samples": int(sl.stop - sl.start),
                 "newest": float(ok[labels == cls].mean()),
                 "earlier": float(ok[labels != cls].mean()) if k else None,
                 "all_learned": float(ok.mean()), "n_test": int(len(test))})
    return assign
