"""The surrogate-gradient family (`network.model: surrogate`; Perez-Nieves & Goodman
2021, seeds.md 1): input -> hidden LIF layers -> a leaky readout, trained by BPTT with a
dense or sparse backward on latency-coded images or recorded spikes.

The protocol: epochs of mini-batches (the chip replays the first
`run.chip_batches_per_epoch` batches of every epoch: forward spikes, the backward's
active sets, one optimiser step per batch), the test set after every epoch, then the
test phase. A checkpoint follows every epoch (weights, Adam moments, the history);
resuming gives the uninterrupted weights: epoch e's batch order is a permutation drawn
from (seed, 1, e), and nothing else is random after the initialisation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

import numpy as np
from pydantic import Field

from snn_frontend.models import surrogate_spec
from snn_frontend.spec import NetworkSpec
from snn_frontend.spiking_data import SpikeSet
from snn_frontend.surrogate import (
    Events,
    Record,
    StepCounts,
    SurrogateNetwork,
    SurrogateParams,
    spikeset_events,
)

from ..config.base import LearningBase, NetworkBase, NonNeg, Pos
from ..errors import RunError
from ..registry import register_family
from ..run.family import NetworkFamily
from ..run.rundir import read_npz
from .spikes import spike_sets

__all__ = ["SurrogateFamily", "SurrogateNetworkConfig", "BpttLearningConfig", "SpikeData",
           "surrogate_params", "kept_for_backward", "to_nir", "REIMPORT_SETTINGS",
           "to_snntorch_nir", "SNNTORCH_REIMPORT_SETTINGS", "SNNTORCH_DT_MS"]


class SurrogateNetworkConfig(NetworkBase):
    # input -> hidden LIF layers (threshold 1, reset by subtraction) -> a non-spiking
    # leaky readout (docs/equations.md)
    model: Literal["surrogate"] = "surrogate"
    hidden_sizes: list[Annotated[int, Field(gt=0, le=100_000)]] = [200, 200]
    tau_mem_ms: Pos = 10.0
    tau_readout_ms: Pos = 10.0  # SHD: 20 ms
    # normal: N(0, init_gain (1 - beta) / sqrt(fan_in)) (F-MNIST); uniform: U(+-1/sqrt(fan_in))
    init: Literal["normal", "uniform"] = "normal"
    init_gain: Pos = 20.0
    init_model: Optional[str] = None  # model.npz of a finished run: start from its weights


class BpttLearningConfig(LearningBase):
    rule: Literal["bptt"] = "bptt"
    epochs: Annotated[int, Field(ge=1, le=1000)] = 1
    backward: Literal["dense", "sparse"] = "sparse"  # sparse: gradient only where |V - 1| < window
    backward_window: Pos = 0.2  # B_th: half-width of the active band around the threshold
    loss: Literal["max", "sum"] = "max"  # log-softmax of the readout's max (or sum) over time
    batch_size: Annotated[int, Field(gt=0, le=65536)] = 256  # the last partial batch is dropped
    lr: Pos = 2e-4  # Adam
    adam_beta1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    adam_beta2: Annotated[float, Field(ge=0, lt=1)] = 0.999
    adam_eps: Pos = 1e-8
    reg_upper_strength: NonNeg = 0.06  # lambda_up [mean spikes per neuron - target]_+^p
    reg_upper_spikes: NonNeg = 1.0  # f_up, spikes per neuron per sample (SHD: 10)
    reg_upper_power: Pos = 1.0
    reg_lower_strength: NonNeg = 100.0  # lambda_low / N sum_j [target - spikes_j]_+^p
    reg_lower_spikes: NonNeg = 1e-3
    reg_lower_power: Pos = 2.0


#: Perez-Nieves & Goodman 2021 (seeds.md 1.3): latency-coded images, 100 steps of 1 ms
DEFAULTS = {
    "data": {"shuffle": True},
    "encoding": {"scheme": "latency", "present_ms": 100.0, "rest_ms": 0.0, "dt_ms": 1.0},
    "run": {"phases": ["train", "infer"]},
}
_IMAGES = ("digits", "mnist", "fashion_mnist")


@dataclass
class SpikeData:
    train: SpikeSet
    test: SpikeSet
    n_classes: int


def surrogate_params(cfg, n_in: int, n_classes: int) -> SurrogateParams:
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


def _spec(cfg, p: SurrogateParams) -> NetworkSpec:
    return surrogate_spec(p.n_in, p.hidden, p.n_out,
                          info={"model": cfg.network.model, "backward": cfg.learning.backward})


# ---------------------------------------------------------------------- counts
class BpttCounts:
    """The surrogate network's operation counts (lists: per hidden layer, or per
    projection input -> readout)."""

    def __init__(self, n_layers: int):
        z = [0] * n_layers
        self.c = {"samples": 0, "batches": 0, "input_spikes": 0, "hidden_spikes": list(z),
                  "synops": [0] * (n_layers + 1), "surrogate_evals": list(z),
                  "active_entries": list(z), "weight_grad_macs": [0] * (n_layers + 1),
                  "input_grad_macs": [0] * (n_layers + 1), "optimizer_steps": 0,
                  "backward_kept_bytes": 0}

    def add_forward(self, rec: Record) -> None:
        c = self.c
        c["samples"] += rec.O.shape[0]
        c["input_spikes"] += len(rec.layers[0].inputs.idx)
        for i, layer in enumerate(rec.layers):
            c["hidden_spikes"][i] += len(layer.spikes.idx)
        for i, n in enumerate(rec.synops):
            c["synops"][i] += int(n)

    def add_backward(self, sc: StepCounts, kept_bytes: int) -> None:
        c = self.c
        c["batches"] += 1
        c["optimizer_steps"] += 1
        for key, vals in (("surrogate_evals", sc.surrogate), ("active_entries", sc.active),
                          ("weight_grad_macs", sc.weight_macs), ("input_grad_macs", sc.input_macs)):
            for i, v in enumerate(vals):
                c[key][i] += int(v)
        c["backward_kept_bytes"] += kept_bytes

    def as_dict(self) -> dict:
        return dict(self.c)

    def per_sample(self) -> dict:
        c, n = self.c, max(self.c["samples"], 1)
        out = {"input_spikes": c["input_spikes"] / n,
               "hidden_spikes": [s / n for s in c["hidden_spikes"]]}
        if c["batches"]:
            out["active_entries"] = [a / n for a in c["active_entries"]]
            out["backward_kept_bytes_per_batch"] = c["backward_kept_bytes"] / c["batches"]
        return out

    def load(self, d: dict) -> None:
        self.c.update(d)


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


# -------------------------------------------------------------------- protocol
def evaluate(run, data: SpikeSet, ph=None, on_batch=None) -> float:
    """Accuracy over a whole set (the last batch may be partial); with a phase, its
    counts and trace record every batch."""
    net, B, correct = run.net, run.cfg.learning.batch_size, 0
    for start in range(0, len(data), B):
        idx = np.arange(start, min(start + B, len(data)))
        rec = net.forward(spikeset_events(data, idx), train=False)
        correct += int((net.predict(rec.O) == data.labels[idx]).sum())
        if ph is not None:
            ph.counts.add_forward(rec)
            if ph.trace is not None:
                net.record_batch(ph.trace, run.spec, start, rec, learn=False)
        if on_batch is not None:
            on_batch(len(idx))
    return correct / max(len(data), 1)


def train(run) -> None:
    cfg, data = run.cfg, run.data
    B, epochs = cfg.learning.batch_size, cfg.learning.epochs
    n_batches = len(data.train) // B
    history = run.results["history"] = list(run.extra.get("history", []))
    ph = run.open_phase("train", learn=True)
    with ph, run.bar(epochs * n_batches, "train", unit="batch",
                     initial=run.position * n_batches) as bar:
        for epoch in range(run.position, epochs):
            history.append(_epoch(run, ph, epoch, n_batches, bar))
            if cfg.run.checkpoint_every and epoch + 1 < epochs:
                run.checkpoint(epoch + 1, {"history": history})
    ph.close()


def _epoch(run, ph, epoch: int, n_batches: int, bar) -> dict:
    """One epoch of mini-batches (the first `run.chip_batches_per_epoch` traced), then the
    test set; the epoch's row of the history."""
    cfg, net, data = run.cfg, run.net, run.data
    B = cfg.learning.batch_size
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
        ph.counts.add_forward(rec)
        ph.counts.add_backward(sc, kept_for_backward(rec, rec.active))
        if ph.trace is not None and k < cfg.run.chip_batches_per_epoch:
            net.record_batch(ph.trace, run.spec, (epoch * n_batches + k) * B, rec, learn=True)
        losses.append(loss)
        running = loss if running is None else 0.98 * running + 0.02 * loss
        bar.set_postfix(epoch=epoch + 1, loss=f"{running:.4f}", refresh=False)
        bar.update(1)
    train_s = time.perf_counter() - t0
    test_acc = evaluate(run, data.test)
    bar.set_postfix(epoch=epoch + 1, loss=f"{running:.4f}", test=f"{test_acc:.4f}")
    return {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
            "train_accuracy": correct / (n_batches * B), "test_accuracy": test_acc,
            "seconds": train_s}


def protocol(run) -> dict:
    accuracy: dict = {}
    if "train" in run.cfg.run.phases:
        train(run)
        history = run.results["history"]
        accuracy["history"] = history
        accuracy["train"] = history[-1].get("train_accuracy") if history else None
    if "infer" in run.cfg.run.phases:
        test = run.data.test
        with run.phase("infer", learn=False) as ph, run.bar(len(test), "infer") as bar:
            accuracy["test"] = evaluate(run, test, ph, on_batch=bar.update)
        accuracy["n_test"] = len(test)
    return accuracy


# ------------------------------------------------------------------------ NIR
#: the import settings that reproduce an exported surrogate network
REIMPORT_SETTINGS = {"nir_integration": {"lif": "exact", "li": "exact"},
                     "nir_reset": {"lif": "subtract"}}


def to_nir(cfg, model: dict[str, np.ndarray]):
    """The trained network as NIR, exactly (docs/nir.md):

        input -> Linear(W0^T) -> Delay(dt) -> LIF (hidden_1) -> ... -> Linear -> Delay(dt) -> LI

    LIF: tau = tau_mem, v_leak = 0, v_threshold = 1, v_reset = 0, r = 1 / (1 - beta), so
    that the exact integration adds each input unscaled (V = beta V + h), reset by
    subtraction; the readout LI: tau = tau_readout, r = 1 (O = beta_out O + (1 - beta_out)
    a). The Delay of one step is the network's synaptic delay (an input spike at step k - 1
    reaches step k). Re-import with `network.dt_ms` = the run's `encoding.dt_ms` and
    REIMPORT_SETTINGS."""
    import nir

    n_hidden = len(cfg.network.hidden_sizes)
    missing = [f"W{i}" for i in range(n_hidden + 1) if f"W{i}" not in model]
    if missing:
        raise RunError(f"the model has no {', '.join(missing)}: not this run's network")
    dt_s = cfg.encoding.dt_ms * 1e-3
    tau, tau_out = cfg.network.tau_mem_ms * 1e-3, cfg.network.tau_readout_ms * 1e-3
    beta = np.exp(-dt_s / tau)
    nodes = {"input": nir.Input(input_type={"input": np.array([model["W0"].shape[0]])})}
    edges, prev = [], "input"
    for i in range(n_hidden + 1):
        W = np.asarray(model[f"W{i}"], np.float32)
        n = W.shape[1]
        fc, delay = f"fc{i}", f"delay{i}"
        nodes[fc] = nir.Linear(weight=W.T.copy())
        nodes[delay] = nir.Delay(delay=np.full(n, dt_s))
        if i < n_hidden:
            name = f"hidden_{i + 1}"
            nodes[name] = nir.LIF(tau=np.full(n, tau), r=np.full(n, 1.0 / (1.0 - beta)),
                                  v_leak=np.zeros(n), v_threshold=np.ones(n),
                                  v_reset=np.zeros(n))
        else:
            name = "readout"
            nodes[name] = nir.LI(tau=np.full(n, tau_out), r=np.ones(n), v_leak=np.zeros(n))
        edges += [(prev, fc), (fc, delay), (delay, name)]
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([model[f"W{n_hidden}"].shape[1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges,
                        metadata={"exported_by": "neuro-accel-sim", "dt_ms": cfg.encoding.dt_ms,
                                  "reimport": str(REIMPORT_SETTINGS)})


#: how this project reads the snnTorch form back (with network.dt_ms = SNNTORCH_DT_MS)
SNNTORCH_DT_MS = 0.1
SNNTORCH_REIMPORT_SETTINGS = {"nir_integration": {"lif": "euler"}, "nir_reset": {"lif": "zero"}}


def to_snntorch_nir(cfg, model: dict[str, np.ndarray]):
    """The trained network in the form snnTorch's `import_from_nir` loads (docs/nir.md):

        input -> Linear(W0^T) -> LIF -> ... -> Linear(W^T) -> LIF (readout)

    snnTorch's importer takes a LIF as `Leaky(beta = 1 - dt / tau, threshold = v_threshold /
    (r dt / tau))` with its own dt = 0.1 ms, resetting to zero at once, and knows neither
    `Delay` nor `LI`. So: tau = dt / (1 - beta) and r = tau / dt (V = beta V + h, as
    trained); no synaptic delay (a spike reaches the next layer in its own step); reset to
    zero instead of subtraction; the readout a spiking LIF (threshold 1) whose membrane is
    the trained readout's divided by (1 - beta_out) (V = beta_out V + W a). Node names
    sort in graph order (l01_fc, l01_hidden, ..., lNN_readout): nirtorch builds the module
    in name order and gives up after three passes. Spikes of snnTorch's run of this file
    equal this project's import of it with SNNTORCH_REIMPORT_SETTINGS (tested), not the
    trained network's."""
    import nir

    n_hidden = len(cfg.network.hidden_sizes)
    missing = [f"W{i}" for i in range(n_hidden + 1) if f"W{i}" not in model]
    if missing:
        raise RunError(f"the model has no {', '.join(missing)}: not this run's network")
    dt_s = SNNTORCH_DT_MS * 1e-3
    run_dt_s = cfg.encoding.dt_ms * 1e-3
    betas = [float(np.exp(-run_dt_s / (cfg.network.tau_mem_ms * 1e-3)))] * n_hidden + [
        float(np.exp(-run_dt_s / (cfg.network.tau_readout_ms * 1e-3)))]
    nodes = {"input": nir.Input(input_type={"input": np.array([model["W0"].shape[0]])})}
    edges, prev = [], "input"
    for i, beta in enumerate(betas):
        W = np.asarray(model[f"W{i}"], np.float32)
        n = W.shape[1]
        tau = dt_s / (1.0 - beta)
        fc, name = f"l{i + 1:02d}_fc", f"l{i + 1:02d}_" + ("hidden" if i < n_hidden else "readout")
        nodes[fc] = nir.Linear(weight=W.T.copy())
        nodes[name] = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt_s),
                              v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
        edges += [(prev, fc), (fc, name)]
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([model[f"W{n_hidden}"].shape[1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges,
                        metadata={"exported_by": "neuro-accel-sim", "form": "snntorch",
                                  "dt_ms": SNNTORCH_DT_MS,
                                  "reimport": str(SNNTORCH_REIMPORT_SETTINGS)})


# ---------------------------------------------------------------------- family
class SurrogateFamily(NetworkFamily):
    name = "surrogate"
    models = ("surrogate",)
    network_config = SurrogateNetworkConfig
    learning_config = BpttLearningConfig
    size_keys = ("network.hidden_sizes",)

    def defaults(self, model: str) -> dict:
        return DEFAULTS

    def check(self, cfg) -> list[str]:
        out = []
        if "label" in cfg.run.phases:
            out.append("run.phases: the surrogate network has a readout and no labelling "
                       "phase; use [train, infer]")
        if cfg.data.dataset == "events":
            out.append("data.dataset: the surrogate network trains on images or recorded "
                       "datasets (nmnist, shd), not on one file of events")
        if cfg.data.dataset in _IMAGES and cfg.encoding.scheme != "latency":
            out.append("encoding.scheme: the surrogate network reads images as a latency code "
                       "(scheme: latency)")
        if cfg.data.protocol != "iid":
            out.append("data.protocol: the surrogate network is trained iid")
        if cfg.network.weights.storage_bits != 32:
            out.append("network.weights: the surrogate network trains float32 weights "
                       "(kind: float32)")
        if cfg.network.state_format.kind != "float64":
            out.append("network.state_format: the surrogate network's state is floating point "
                       "(kind: float64)")
        return out

    def neurons(self, cfg) -> int:
        return sum(cfg.network.hidden_sizes) + (20 if cfg.data.dataset == "shd" else 10)

    # ---------------------------------------------------------------- prepare
    def load_data(self, cfg) -> SpikeData:
        sets = spike_sets(cfg, ("train", "test"))
        tr, te = sets["train"], sets["test"]
        data = SpikeData(tr, te, int(max(tr.labels.max(), te.labels.max())) + 1)
        B = cfg.learning.batch_size
        if "train" in cfg.run.phases and len(tr) < B:
            raise RunError(f"learning.batch_size {B} exceeds the {len(tr)} training samples")
        return data

    def build(self, cfg, data: SpikeData) -> SurrogateNetwork:
        params = surrogate_params(cfg, data.train.n_inputs, data.n_classes)
        kw = {"backend": cfg.run.backend, "threads": cfg.run.threads}
        if not cfg.network.init_model:
            return SurrogateNetwork.initialise(params, cfg.seed, **kw)
        shapes = {f"W{i}": (a, b) for i, (a, b) in enumerate(zip(params.sizes[:-1],
                                                                  params.sizes[1:]))}
        z = read_npz(Path(cfg.network.init_model), "network.init_model", shapes)
        return SurrogateNetwork(params, [z[k] for k in shapes], **kw)

    def spec(self, cfg, net: SurrogateNetwork) -> NetworkSpec:
        return _spec(cfg, net.p)

    def describe(self, cfg, data: SpikeData, net: SurrogateNetwork, spec) -> str:
        return (f"{len(data.train)} train, {len(data.test)} test samples of {net.p.steps} "
                f"steps; surrogate {'-'.join(map(str, net.p.sizes))}, "
                f"{cfg.learning.backward} backward")

    # ------------------------------------------------------------------ run
    def samples(self, cfg, data: SpikeData) -> dict[str, int]:
        B, phases = cfg.learning.batch_size, cfg.run.phases
        return {"train": len(data.train) // B * B * cfg.learning.epochs if "train" in phases
                else 0, "infer": len(data.test) if "infer" in phases else 0}

    def run(self, run) -> dict:
        return protocol(run)

    def new_counts(self, phase: str, spec: NetworkSpec) -> BpttCounts:
        return BpttCounts(len(spec.chip_populations) - 1)

    def trace_meta(self, cfg, net: SurrogateNetwork, spec, *, learn: bool):
        return (net.trace_meta(spec, learn=learn, batch=cfg.learning.batch_size),
                net.events(spec, learn))

    def state(self, net: SurrogateNetwork) -> dict[str, np.ndarray]:
        arrays = {f"W{i}": w for i, w in enumerate(net.W)}
        arrays.update({f"m{i}": m for i, m in enumerate(net.m)})
        arrays.update({f"v{i}": v for i, v in enumerate(net.v)})
        arrays["adam_t"] = np.int64(net.t)
        return arrays

    def load_state(self, net: SurrogateNetwork, arrays) -> None:
        for i in range(len(net.W)):
            net.W[i][...] = arrays[f"W{i}"]
            net.m[i][...] = arrays[f"m{i}"]
            net.v[i][...] = arrays[f"v{i}"]
        net.t = int(arrays["adam_t"])

    def model_arrays(self, run) -> dict[str, np.ndarray]:
        return {f"W{i}": w for i, w in enumerate(run.net.W)}

    def model_stats(self, run) -> dict:
        cfg, p = run.cfg, run.net.p
        stats = {"network": cfg.network.model, "n_input": p.sizes[0],
                 "hidden": list(p.sizes[1:-1]), "n_classes": p.sizes[-1],
                 "backward": cfg.learning.backward,
                 "backward_window": cfg.learning.backward_window
                 if cfg.learning.backward == "sparse" else None}
        train = run.phases["train"].counts.c if "train" in run.phases else None
        if train and train["samples"]:
            stats["active_fraction"] = [a / (train["samples"] * (p.steps - 1) * n)
                                        for a, n in zip(train["active_entries"], p.hidden)]
            stats["spike_fraction"] = [s / (train["samples"] * p.steps * n)
                                       for s, n in zip(train["hidden_spikes"], p.hidden)]
        return stats

    def finish(self, run) -> None:
        history = run.results.get("history")
        if history:
            from ..plot import plot_training

            plot_training(history, run.out / "training.png", model=run.cfg.network.model)

    def close(self, net: SurrogateNetwork) -> None:
        net.close()

    # -------------------------------------------------------- other commands
    def quick_overrides(self, cfg) -> list[str]:
        """Two epochs over 512 training samples, 256 test samples, one chip batch."""
        return ["data.train_samples=512", "data.test_samples=256", "learning.epochs=2",
                "learning.batch_size=128", "run.chip_batches_per_epoch=1"]

    def phase_samples(self, cfg) -> dict[str, int | None]:
        d = cfg.data  # reading the whole set would latency-code it
        return {"train": d.train_samples and d.train_samples * cfg.learning.epochs,
                "infer": d.test_samples}

    def spec_for_size(self, cfg, ref: NetworkSpec) -> NetworkSpec:
        n_in = next(q.size for q in ref.populations if not q.on_chip)
        return _spec(cfg, surrogate_params(cfg, n_in, ref.populations[-1].size))

    def to_nir(self, cfg, model: dict[str, np.ndarray], form: str = "exact"):
        return to_nir(cfg, model) if form == "exact" else to_snntorch_nir(cfg, model)


register_family(SurrogateFamily())
