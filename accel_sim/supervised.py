"""A run of the supervised surrogate-gradient network (network.model: surrogate), as small
steps: load spike data -> build the network and its spec -> set up the chip -> train
epochs of mini-batches (the chip replays the first `run.chip_batches_per_epoch` batches of
every epoch: forward spikes, the backward's active sets, one optimiser step per batch) ->
test -> price -> write the run directory.

A checkpoint is written after every epoch (weights, Adam moments, the history, the chip's
counts); `resume_experiment` continues from it to the same weights as an uninterrupted run:
the batch order of epoch e is a permutation drawn from (seed, 1, e), and nothing else is
random after the initialisation.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snn_frontend.datasets import load_dataset, select, split_validation
from snn_frontend.models import surrogate_spec
from snn_frontend.spec import NetworkSpec
from snn_frontend.spiking_data import SpikeSet, latency_code, load_nmnist, load_shd
from snn_frontend.surrogate import (
    Events,
    Record,
    StepCounts,
    SurrogateNetwork,
    SurrogateParams,
    spikeset_events,
)
from snn_frontend.trace import TraceBuilder

from .config import Config
from .costing import ChipSetup, hardware_stats, prepare_chip, state_bits
from .errors import RunError
from .memory import network_memory
from .rundir import (
    CHECKPOINT,
    MODEL,
    load_checkpoint,
    read_npz,
    run_info,
    save_npz,
    write_json,
    write_outputs,
)

__all__ = ["SpikeData", "build_surrogate", "execute", "load_spike_data", "surrogate_params"]


@dataclass
class SpikeData:
    train: SpikeSet
    test: SpikeSet
    n_classes: int


def load_spike_data(cfg: Config) -> SpikeData:
    """The training and test sets as spikes: latency-coded images or recorded events."""
    d, e = cfg.data, cfg.encoding
    steps = round(e.present_ms / e.dt_ms)
    if d.dataset == "nmnist":
        train = load_nmnist(d.root, "train", steps, e.dt_ms)
        test = load_nmnist(d.root, "test", steps, e.dt_ms)
    elif d.dataset == "shd":
        train = load_shd(d.root, "train", steps, e.dt_ms)
        test = load_shd(d.root, "test", steps, e.dt_ms)
    else:
        tr, te = load_dataset(d.dataset, "train", d.root), None
        if d.evaluate_on == "validation":
            tr, te = split_validation(tr, d.validation_samples)
        else:
            te = load_dataset(d.dataset, "test", d.root)
        tr = select(tr, n=d.train_samples, classes=d.classes)
        te = select(te, n=d.test_samples, classes=d.classes)
        code = {"steps": steps, "dt_ms": e.dt_ms, "tau_eff_ms": e.latency_tau_ms,
                "theta": e.latency_theta}
        return SpikeData(latency_code(tr.images, labels=tr.labels, **code),
                         latency_code(te.images, labels=te.labels, **code),
                         int(max(tr.labels.max(), te.labels.max())) + 1)
    if d.evaluate_on == "validation":  # recorded sets: the last samples of the training split
        n = min(d.validation_samples, len(train) - 1)
        train, test = train.subset(np.arange(len(train) - n)), train.subset(
            np.arange(len(train) - n, len(train)))
    train = _first(train, d.train_samples, d.classes)
    test = _first(test, d.test_samples, d.classes)
    return SpikeData(train, test, int(max(train.labels.max(), test.labels.max())) + 1)


def _first(s: SpikeSet, n: int | None, classes) -> SpikeSet:
    keep = np.arange(len(s)) if classes is None else np.flatnonzero(np.isin(s.labels, classes))
    return s.subset(keep[:n] if n is not None else keep)


def surrogate_params(cfg: Config, n_in: int, n_classes: int) -> SurrogateParams:
    net, lr, e = cfg.network, cfg.learning, cfg.encoding
    return SurrogateParams(
        n_in=n_in, hidden=tuple(net.hidden_sizes), n_out=n_classes,
        steps=round(e.present_ms / e.dt_ms), dt_ms=e.dt_ms, tau_mem_ms=net.tau_mem_ms,
        tau_out_ms=net.tau_readout_ms,
        window=lr.backward_window if lr.backward == "sparse" else None, loss=lr.loss,
        reg_upper_strength=lr.reg_upper_strength, reg_upper_target=lr.reg_upper_spikes,
        reg_upper_power=lr.reg_upper_power, reg_lower_strength=lr.reg_lower_strength,
        reg_lower_target=lr.reg_lower_spikes, reg_lower_power=lr.reg_lower_power,
        lr=lr.lr, adam_beta1=lr.adam_beta1, adam_beta2=lr.adam_beta2, adam_eps=lr.adam_eps,
        init=net.init, init_gain=net.init_gain)


def build_surrogate(cfg: Config, params: SurrogateParams) -> SurrogateNetwork:
    """The network, initialised from the seed or from `network.init_model`."""
    kw = {"backend": cfg.run.backend, "threads": cfg.run.threads}
    if not cfg.network.init_model:
        return SurrogateNetwork.initialise(params, cfg.seed, **kw)
    shapes = {f"W{i}": (a, b) for i, (a, b) in enumerate(zip(params.sizes[:-1], params.sizes[1:]))}
    z = read_npz(Path(cfg.network.init_model), "network.init_model", shapes)
    return SurrogateNetwork(params, [z[k] for k in shapes], **kw)


def spec_of(params: SurrogateParams, cfg: Config) -> NetworkSpec:
    return surrogate_spec(params.n_in, params.hidden, params.n_out,
                          info={"model": cfg.network.model, "backward": cfg.learning.backward})


# ------------------------------------------------------------------------- trace streams
# ------------------------------------------------------------------------- the run
@dataclass
class SRun:
    cfg: Config
    out: Path
    data: SpikeData
    params: SurrogateParams
    net: SurrogateNetwork
    spec: NetworkSpec
    setup: ChipSetup | None
    show: bool
    timing: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    chip_results: dict = field(default_factory=dict)
    resumed: bool = False


def _new_counts(n_layers: int) -> dict:
    z = [0] * n_layers
    return {"samples": 0, "batches": 0, "input_spikes": 0, "hidden_spikes": list(z),
            "synops": [0] * (n_layers + 1), "surrogate_evals": list(z),
            "active_entries": list(z), "weight_grad_macs": [0] * (n_layers + 1),
            "input_grad_macs": [0] * (n_layers + 1), "optimizer_steps": 0,
            "backward_kept_bytes": 0}


def _add_forward(c: dict, rec: Record) -> None:
    B = rec.O.shape[0]
    c["samples"] += B
    c["input_spikes"] += len(rec.layers[0].inputs.idx)
    for i, layer in enumerate(rec.layers):
        c["hidden_spikes"][i] += len(layer.spikes.idx)
    for i, n in enumerate(rec.synops):
        c["synops"][i] += int(n)


def _add_backward(c: dict, sc: StepCounts, kept_bytes: int) -> None:
    c["batches"] += 1
    c["optimizer_steps"] += 1
    for key, vals in (("surrogate_evals", sc.surrogate), ("active_entries", sc.active),
                      ("weight_grad_macs", sc.weight_macs), ("input_grad_macs", sc.input_macs)):
        for i, v in enumerate(vals):
            c[key][i] += int(v)
    c["backward_kept_bytes"] += kept_bytes


def kept_for_backward(rec: Record, active: list[Events] | None) -> int:
    """Bytes the backward pass needs from the forward: every layer's input events (int32
    index, int64 offset per step) and, dense, every membrane (float32); sparse, only the
    active entries (int32 index and float32 surrogate, int64 offsets per step)."""
    B, T = rec.O.shape[0], rec.O.shape[1]
    events = sum(4 * len(layer.inputs.idx) + 8 * (B * T + 1) for layer in rec.layers)
    events += 4 * len(rec.layers[-1].spikes.idx) + 8 * (B * T + 1)  # the readout's inputs
    if active is None:
        return events + sum(4 * layer.V.size for layer in rec.layers)
    return events + sum(8 * len(a.idx) + 8 * (B * T + 1) for a in active)


def _per_sample(c: dict) -> dict:
    n = max(c["samples"], 1)
    out = {"input_spikes": c["input_spikes"] / n,
           "hidden_spikes": [s / n for s in c["hidden_spikes"]]}
    if c["batches"]:
        out["active_entries"] = [a / n for a in c["active_entries"]]
        out["backward_kept_bytes_per_batch"] = c["backward_kept_bytes"] / c["batches"]
    return out


def evaluate(net: SurrogateNetwork, data: SpikeSet, batch: int, counts: dict | None = None,
             tb: TraceBuilder | None = None, spec: NetworkSpec | None = None,
             on_batch=None) -> float:
    """Test accuracy over a whole set (the last batch may be partial)."""
    correct = 0
    for start in range(0, len(data), batch):
        idx = np.arange(start, min(start + batch, len(data)))
        rec = net.forward(spikeset_events(data, idx), train=False)
        correct += int((net.predict(rec.O) == data.labels[idx]).sum())
        if counts is not None:
            _add_forward(counts, rec)
        if tb is not None:
            net.record_batch(tb, spec, start, rec, learn=False)
        if on_batch is not None:
            on_batch(len(idx))
    return correct / max(len(data), 1)


def train(run: SRun, ckpt: dict | None) -> None:
    cfg, net, data, p = run.cfg, run.net, run.data, run.params
    B = cfg.learning.batch_size
    n_batches = len(data.train) // B
    if n_batches == 0:
        raise RunError(f"learning.batch_size {B} exceeds the {len(data.train)} training samples")
    epochs = cfg.learning.epochs
    counts = _new_counts(len(p.hidden))
    replay = run.setup.chip.phase("train") if run.setup is not None else None
    start, elapsed = 0, 0.0
    if ckpt is not None:
        start, elapsed = _restore(run, ckpt, counts, replay)
    tb = _builder(run, "train", learn=True, replay=replay)
    if tb is not None and ckpt is not None and "trace_parts_train" in ckpt:
        tb.truncate_parts(int(ckpt["trace_parts_train"]))
    traced = cfg.run.chip_batches_per_epoch
    with tqdm(total=epochs * n_batches, initial=start * n_batches, desc="train", unit="batch",
              disable=not run.show, dynamic_ncols=True) as bar:
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            order = np.random.default_rng([cfg.seed, 1, epoch]).permutation(len(data.train))
            losses, correct, running = [], 0, None
            for k in range(n_batches):
                idx = order[k * B:(k + 1) * B]
                rec = net.forward(spikeset_events(data.train, idx))
                labels = data.train.labels[idx]
                correct += int((net.predict(rec.O) == labels).sum())
                loss, grads, sc = net.backward(rec, labels)
                net.adam_step(grads)
                _add_forward(counts, rec)
                _add_backward(counts, sc, kept_for_backward(rec, rec.active))
                if tb is not None and k < traced:
                    net.record_batch(tb, run.spec, (epoch * n_batches + k) * B, rec, learn=True)
                losses.append(loss)
                running = loss if running is None else 0.98 * running + 0.02 * loss
                bar.set_postfix(epoch=epoch + 1, loss=f"{running:.4f}", refresh=False)
                bar.update(1)
            train_s = time.perf_counter() - t0
            test_acc = evaluate(net, data.test, B)
            run.history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                                "train_accuracy": correct / (n_batches * B),
                                "test_accuracy": test_acc, "seconds": train_s})
            bar.set_postfix(epoch=epoch + 1, loss=f"{running:.4f}", test=f"{test_acc:.4f}")
            elapsed += time.perf_counter() - t0
            if cfg.run.checkpoint_every and epoch + 1 < epochs:
                _checkpoint(run, epoch + 1, elapsed, counts, replay, tb)
    if tb is not None:
        tb.close()
    run.counts["train"] = counts
    run.timing["train"] = elapsed - (replay.result.wall_s if replay is not None else 0.0)
    if replay is not None:
        run.chip_results["train"] = replay.finish()


def _builder(run: SRun, phase: str, *, learn: bool, replay) -> TraceBuilder | None:
    save = phase in run.cfg.run.trace_phases
    if not save and replay is None:
        return None
    meta = dict(run.net.trace_meta(run.spec, learn=learn, batch=run.cfg.learning.batch_size),
                phase=phase, model=run.cfg.network.model, seed=run.cfg.seed)
    return TraceBuilder(meta, run.net.events(run.spec, learn),
                        out_dir=run.out / f"trace_{phase}" if save else None,
                        on_part=replay.consume if replay is not None else None, part_size=512)


def _checkpoint(run: SRun, epoch: int, elapsed: float, counts: dict, replay, tb) -> None:
    net = run.net
    arrays = {f"W{i}": w for i, w in enumerate(net.W)}
    arrays.update({f"m{i}": m for i, m in enumerate(net.m)})
    arrays.update({f"v{i}": v for i, v in enumerate(net.v)})
    arrays.update(adam_t=np.int64(net.t), position=np.int64(epoch),
                  elapsed_s=np.float64(elapsed),
                  history_json=np.array(json.dumps(run.history)),
                  counts_json_train=np.array(json.dumps(counts)))
    if tb is not None:
        tb.flush()
        arrays["trace_parts_train"] = np.int64(tb.parts_written)
    if replay is not None:
        arrays["chip_json_train"] = np.array(json.dumps(replay.snapshot()))
    save_npz(run.out / CHECKPOINT, arrays)


def _restore(run: SRun, ckpt: dict, counts: dict, replay) -> tuple[int, float]:
    net = run.net
    try:
        for i in range(len(net.W)):
            net.W[i][...] = ckpt[f"W{i}"]
            net.m[i][...] = ckpt[f"m{i}"]
            net.v[i][...] = ckpt[f"v{i}"]
        net.t = int(ckpt["adam_t"])
        run.history = json.loads(str(ckpt["history_json"]))
        counts.update(json.loads(str(ckpt["counts_json_train"])))
        if replay is not None and "chip_json_train" in ckpt:
            replay.restore(json.loads(str(ckpt["chip_json_train"])))
    except (KeyError, ValueError, TypeError) as exc:
        raise RunError(f"{run.out / CHECKPOINT} does not match this run: {exc}") from None
    run.resumed = True
    return int(ckpt["position"]), float(ckpt["elapsed_s"])


def _checkpoint_shapes(net: SurrogateNetwork) -> dict:
    shapes = {f"W{i}": w.shape for i, w in enumerate(net.W)}
    shapes.update({f"m{i}": w.shape for i, w in enumerate(net.W)})
    shapes.update({f"v{i}": w.shape for i, w in enumerate(net.W)})
    return shapes


def infer(run: SRun) -> float:
    counts = _new_counts(len(run.params.hidden))
    replay = run.setup.chip.phase("infer") if run.setup is not None else None
    tb = _builder(run, "infer", learn=False, replay=replay)
    t0 = time.perf_counter()
    with tqdm(total=len(run.data.test), desc="infer", unit="sample", disable=not run.show,
              dynamic_ncols=True) as bar:
        acc = evaluate(run.net, run.data.test, run.cfg.learning.batch_size, counts, tb, run.spec,
                       on_batch=bar.update)
    if tb is not None:
        tb.close()
    run.counts["infer"] = counts
    run.timing["infer"] = time.perf_counter() - t0 - (replay.result.wall_s if replay else 0.0)
    if replay is not None:
        run.chip_results["infer"] = replay.finish()
    return acc


def collect_stats(run: SRun, accuracy: dict) -> dict:
    cfg = run.cfg
    stats: dict = {
        "accuracy": accuracy,
        "frontend": {ph: dict(c, per_sample=_per_sample(c)) for ph, c in run.counts.items()},
        "memory": network_memory(run.spec, 32),
    }
    if run.setup is not None:
        results = {p: r.as_dict() for p, r in run.chip_results.items()}
        stats["hardware"] = hardware_stats(cfg, run.setup, results, state_bits(cfg))
        run.timing["simulate"] = sum(r.wall_s for r in run.chip_results.values())
    sizes = run.params.sizes
    train = run.counts.get("train")
    stats["model"] = {"network": cfg.network.model, "n_input": sizes[0],
                      "hidden": list(sizes[1:-1]), "n_classes": sizes[-1],
                      "backward": cfg.learning.backward,
                      "backward_window": cfg.learning.backward_window
                      if cfg.learning.backward == "sparse" else None}
    if train and train["samples"]:
        steps = run.params.steps
        stats["model"]["active_fraction"] = [
            a / (train["samples"] * (steps - 1) * n)
            for a, n in zip(train["active_entries"], run.params.hidden)]
        stats["model"]["spike_fraction"] = [
            s / (train["samples"] * steps * n)
            for s, n in zip(train["hidden_spikes"], run.params.hidden)]
    return stats


def execute(cfg: Config, out: Path, show: bool, resume: bool) -> dict:
    """The whole run (behind `run_experiment` / `resume_experiment`); returns stats."""
    started = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    data = load_spike_data(cfg)
    load_s = time.perf_counter() - t0
    params = surrogate_params(cfg, data.train.n_inputs, data.n_classes)
    net = build_surrogate(cfg, params)
    spec = spec_of(params, cfg)
    setup = prepare_chip(cfg, spec)
    run = SRun(cfg, out, data, params, net, spec, setup, show, timing={"load": load_s})
    ckpt = load_checkpoint(out, _checkpoint_shapes(net)) if resume else None
    if net.backend != "cython":
        print("accel-sim: the compiled kernels are not built; running the slow NumPy "
              "reference (reinstall with a C compiler: pip install -e .)", file=sys.stderr)
    samples = {"train": len(data.train) // cfg.learning.batch_size * cfg.learning.batch_size
               * cfg.learning.epochs if "train" in cfg.run.phases else 0,
               "infer": len(data.test) if "infer" in cfg.run.phases else 0}

    def info(ended):
        return run_info(cfg, backend=net.backend, samples=samples, timing=run.timing,
                        started=started, ended=ended, resumed=run.resumed)

    write_json(out / "run.json", info(None))
    accuracy: dict = {}
    try:
        if "train" in cfg.run.phases:
            train(run, ckpt)
            accuracy["history"] = run.history
            last = run.history[-1] if run.history else {}
            accuracy["train"] = last.get("train_accuracy")
        if "infer" in cfg.run.phases:
            accuracy["test"] = infer(run)
            accuracy["n_test"] = len(data.test)
    finally:
        net.close()
    stats = collect_stats(run, accuracy)
    save_npz(out / MODEL, {f"W{i}": w for i, w in enumerate(net.W)})
    write_json(out / "stats.json", stats)
    ended = info(datetime.now(UTC).isoformat())
    write_json(out / "run.json", ended)
    write_outputs(out, stats, ended)
    if run.history:
        from .plot import plot_training

        plot_training(run.history, out / "training.png")
    return stats
