"""The STDP family: Diehl & Cook 2015 and its variants FSpiNN, SpikeDyn and ASP
(`network.model`: diehl_cook, fspinn, spikedyn, asp). Unsupervised triplet STDP on
Poisson-coded images, neurons labelled by their responses; iid or class-incremental.

Its config sections are in config.py, its protocols in protocol.py; the network and its
kernels are snn_frontend's `DiehlCookNetwork` (docs/equations.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snn_frontend.counts import FrontendCounts
from snn_frontend.datasets import Dataset, load_dataset, select, split_validation
from snn_frontend.network import DiehlCookNetwork
from snn_frontend.params import MAX_DELAY_STEPS
from snn_frontend.spec import NetworkSpec
from snn_frontend.state import DCState

from ...errors import RunError
from ...registry import register_family
from ...run.family import NetworkFamily
from ...run.rundir import read_npz
from .config import MODEL_DEFAULTS, MODELS, StdpLearningConfig, StdpNetworkConfig
from .protocol import continual, iid

__all__ = ["StdpFamily", "RunData", "load_data", "build_network", "network_spec"]

_IMAGES = ("digits", "mnist", "fashion_mnist")


@dataclass
class RunData:
    train: Dataset
    label: Dataset
    test: Dataset
    n_classes: int

    @property
    def n_in(self) -> int:
        return self.train.n_pixels


def load_data(cfg) -> RunData:
    """The training, labelling and test images (or a validation split of the training set)."""
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


def build_network(cfg, n_in: int) -> DiehlCookNetwork:
    """The frontend network of `network.model`, initialised (from `init_model` if given:
    its weights, thresholds and input delays)."""
    net = DiehlCookNetwork.from_config(cfg, n_in)
    if cfg.network.init_model:
        path = Path(cfg.network.init_model)
        z = read_npz(path, "network.init_model",
                     {"weights": net.weights.shape, "theta": net.state.theta.shape})
        net.weights[...] = z["weights"]
        net.state.theta[:] = z["theta"]
        _load_delays(cfg, net, path, z.get(DELAYS))
    return net


#: the model.npz array of the input delays (in steps; only with network.input_delay_max_ms)
DELAYS = "input_delays"


def _load_delays(cfg, net: DiehlCookNetwork, path: Path, delays) -> None:
    """A trained model's input delays, which its config must ask for (RunError otherwise)."""
    on = net.params.delay_slots > 0
    if delays is None and not on:
        return
    if delays is None:
        raise RunError(f"network.init_model {path} has no '{DELAYS}': it was trained without "
                       "input delays; set network.input_delay_max_ms: 0 (or train with them)")
    if not on:
        raise RunError(f"network.init_model {path} was trained with input delays of up to "
                       f"{int(delays.max()) if delays.size else 0} steps; set "
                       "network.input_delay_max_ms to the value it was trained with")
    try:
        net.set_input_delays(delays)
    except ValueError as exc:
        raise RunError(f"network.init_model {path}: {exc} (network.input_delay_max_ms "
                       f"{cfg.network.input_delay_max_ms} ms)") from None


def network_spec(cfg, net: DiehlCookNetwork) -> NetworkSpec:
    """The network as the chip sees it."""
    fmt = cfg.network.state_format
    return net.spec(cfg.network.weights.storage_bits, fmt.bits if fmt.kind == "fixed" else None,
                    model=cfg.network.model)


class StdpFamily(NetworkFamily):
    name = "stdp"
    models = MODELS
    network_config = StdpNetworkConfig
    learning_config = StdpLearningConfig
    size_keys = ("network.n_excitatory",)

    # ------------------------------------------------------------------ config
    def defaults(self, model: str) -> dict:
        return MODEL_DEFAULTS[model]

    def check(self, cfg) -> list[str]:
        net, lr, model = cfg.network, cfg.learning, cfg.network.model
        out = []
        if cfg.data.dataset not in _IMAGES:
            out.append(f"data.dataset: {model} reads images ({', '.join(_IMAGES)}), not "
                       f"{cfg.data.dataset}")
        if cfg.encoding.scheme != "poisson":
            out.append(f"encoding.scheme: {model} reads images as Poisson rates (poisson)")
        phases = cfg.run.phases
        if "infer" in phases and "label" not in phases and "train" in phases:
            out.append("run.phases: 'infer' needs 'label' (neurons are labelled before testing)")
        if lr.spurious_update_reduction and not lr.timestep_updates:
            out.append("learning.spurious_update_reduction needs learning.timestep_updates "
                       "(updates are committed or dropped at the end of each window)")
        if lr.adaptive_rates and not lr.timestep_updates:
            out.append("learning.adaptive_rates needs learning.timestep_updates (a neuron's "
                       "changes are scaled by its spikes in the window when written back)")
        if net.input_delay_max_ms > 0:
            dt = cfg.encoding.dt_ms
            steps = net.input_delay_max_ms / dt
            if abs(steps - round(steps)) > 1e-9:
                out.append(f"network.input_delay_max_ms: {net.input_delay_max_ms:g} ms is not a "
                           f"whole number of encoding.dt_ms steps ({steps:g} steps of "
                           f"{dt:g} ms); the delays are whole steps 0 .. max/dt - 1")
            elif round(steps) - 1 > MAX_DELAY_STEPS:
                out.append(f"network.input_delay_max_ms: {net.input_delay_max_ms:g} ms is "
                           f"{round(steps):g} steps of {dt:g} ms; at most "
                           f"{(MAX_DELAY_STEPS + 1) * dt:g} ms ({MAX_DELAY_STEPS + 1} steps)")
        if lr.adaptive_inhibition and net.inhibition != "lateral":
            out.append("learning.adaptive_inhibition adapts the direct lateral inhibition: set "
                       "network.inhibition: lateral")
        return out

    def neurons(self, cfg) -> int:
        return cfg.network.n_excitatory * (1 if cfg.network.inhibition == "lateral" else 2)

    # ---------------------------------------------------------------- prepare
    def load_data(self, cfg) -> RunData:
        return load_data(cfg)

    def build(self, cfg, data: RunData) -> DiehlCookNetwork:
        return build_network(cfg, data.n_in)

    def spec(self, cfg, net: DiehlCookNetwork) -> NetworkSpec:
        return network_spec(cfg, net)

    def describe(self, cfg, data: RunData, net, spec) -> str:
        return (f"{len(data.train)} train, {len(data.label)} label, {len(data.test)} test "
                f"samples; {cfg.network.model} with {cfg.network.n_excitatory} excitatory "
                "neurons")

    # ------------------------------------------------------------------ run
    def samples(self, cfg, data: RunData) -> dict[str, int]:
        ph = cfg.run.phases
        return {"train": len(data.train) * cfg.learning.epochs if "train" in ph else 0,
                "label": len(data.label) if "label" in ph else 0,
                "infer": len(data.test) if "infer" in ph else 0}

    def run(self, run) -> dict:
        if run.cfg.data.protocol == "class_incremental":
            return continual(run)
        return iid(run)

    def new_counts(self, phase: str, spec: NetworkSpec) -> FrontendCounts:
        return FrontendCounts()

    def trace_meta(self, cfg, net: DiehlCookNetwork, spec, *, learn: bool):
        return net.trace_meta(spec, learn=learn), net.events() if learn else ()

    def state(self, net: DiehlCookNetwork) -> dict[str, np.ndarray]:
        delays = net.input_delays is not None
        arrays = {f"state_{k}": v for k, v in net.state.arrays().items()
                  if delays or k not in DCState.DELAY_FIELDS}
        arrays.update(weights=net.weights, last_activity=net.last_activity)
        if delays:
            arrays[DELAYS] = net.input_delays
        return arrays

    def load_state(self, net: DiehlCookNetwork, arrays) -> None:
        net.weights[...] = arrays["weights"]
        net.state = DCState.from_arrays({k[len("state_"):]: v for k, v in arrays.items()
                                         if k.startswith("state_")})
        net.last_activity[:] = arrays["last_activity"]
        if DELAYS in arrays:
            net.set_input_delays(arrays[DELAYS])

    def model_arrays(self, run) -> dict[str, np.ndarray]:
        a = run.results.get("assignments")
        arrays = {"weights": run.net.weights, "theta": run.net.state.theta,
                  "assignments": a if a is not None else np.zeros(0)}
        if run.net.input_delays is not None:  # a trained model infers with its delays
            arrays[DELAYS] = run.net.input_delays
        return arrays

    def model_stats(self, run) -> dict:
        cfg, theta, a = run.cfg, run.net.state.theta, run.results.get("assignments")
        return {"network": cfg.network.model, "n_input": run.data.n_in,
                "n_excitatory": cfg.network.n_excitatory, "n_classes": run.data.n_classes,
                "assigned_neurons": int((a >= 0).sum()) if a is not None else 0,
                "theta_mv": {"min": float(theta.min()), "mean": float(theta.mean()),
                             "max": float(theta.max())}}

    # -------------------------------------------------------- other commands
    def quick_overrides(self, cfg) -> list[str]:
        """Class-incremental runs learn four digits of 100 samples each; the others take
        the base family's 200 training and 100 test samples."""
        if cfg.data.protocol == "class_incremental":
            return ["data.train_samples=100", "data.test_samples=100",
                    "data.classes=[0,1,2,3]", "run.checkpoint_every=0"]
        return super().quick_overrides(cfg)

    def spec_for_size(self, cfg, ref: NetworkSpec) -> NetworkSpec:
        n_in = next(q.size for q in ref.populations if not q.on_chip)
        return network_spec(cfg, build_network(cfg, n_in))


register_family(StdpFamily())
