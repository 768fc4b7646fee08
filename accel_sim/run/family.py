"""The plug-in interface of a network family: what the run driver, `validate`, `estimate`,
`search`, `sweep` and `export` ask of a kind of network.

A family is one class (one module), registered once:

    class MyFamily(NetworkFamily):
        name = "mine"
        models = ("mine",)                  # the network.model values it answers
        network_config = MyNetworkConfig    # a NetworkBase subclass, model: Literal["mine"]
        def load_data(self, cfg): ...
        def build(self, cfg, data): ...
        def spec(self, cfg, net): ...
        def run(self, run): ...             # the protocol: phases, samples, checkpoints

    register_family(MyFamily())             # accel_sim.registry

Everything else (timestamps, chip preparation, trace streaming into the replay, timing,
checkpoint files, stats, the run directory) is the driver's (accel_sim/run/driver.py);
docs/architecture.md walks through a new family.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from snn_frontend.spec import NetworkSpec

from ..config.base import LearningBase, NetworkBase, NoLearning
from ..errors import RunError

__all__ = ["NetworkFamily", "Counts", "SpikeCounts"]


class Counts(Protocol):
    """A phase's frontend operation counts (stats.json `frontend.<phase>`)."""

    def as_dict(self) -> dict: ...

    def per_sample(self) -> dict: ...

    def load(self, d: dict) -> None: ...


class SpikeCounts:
    """Samples, steps and spikes per population: the counts of a family that keeps no
    others (an inference-only network)."""

    def __init__(self, populations: tuple[str, ...]):
        self.samples = 0
        self.steps = 0
        self.spikes = dict.fromkeys(populations, 0)

    def add(self, samples: int, steps: int, spikes: dict[str, int]) -> None:
        self.samples += samples
        self.steps += steps
        for k, v in spikes.items():
            self.spikes[k] += int(v)

    def as_dict(self) -> dict:
        return {"samples": self.samples, "steps": self.steps, "spikes": dict(self.spikes)}

    def per_sample(self) -> dict:
        n = max(self.samples, 1)
        return {f"{k}_spikes": v / n for k, v in self.spikes.items()}

    def load(self, d: dict) -> None:
        self.samples, self.steps, self.spikes = d["samples"], d["steps"], dict(d["spikes"])


class NetworkFamily:
    """A kind of network: its config sections, data, network, spec, protocol, state and
    outputs. Methods without a default must be written; the rest fit simple families.
    `run` is the run in progress (accel_sim/run/context.py's `Run`)."""

    name: str
    models: tuple[str, ...]
    network_config: type[NetworkBase]
    learning_config: type[LearningBase] = NoLearning
    #: config keys that set the network's size (a model search carries one calibration of
    #: a family of candidates to each size)
    size_keys: tuple[str, ...] = ()

    # ------------------------------------------------------------------ config
    def defaults(self, model: str) -> dict:
        """Config values `model` sets where the user's config is silent (nested dicts)."""
        return {}

    def check(self, cfg) -> list[str]:
        """Problems across sections ("dotted.path: message"), e.g. a dataset it cannot read."""
        return []

    def neurons(self, cfg) -> int | None:
        """On-chip neurons, if the config alone tells (a chip too small is then found
        before any data is read); None: the mapping checks once the network is built."""
        return None

    # --------------------------------------- what validate and run both do, in order
    def load_data(self, cfg) -> Any:
        raise NotImplementedError

    def build(self, cfg, data) -> Any:
        """The network, initialised (from `network.init_model` where the family has it)."""
        raise NotImplementedError

    def spec(self, cfg, net) -> NetworkSpec:
        """The network as the chip sees it."""
        raise NotImplementedError

    def describe(self, cfg, data, net, spec: NetworkSpec) -> str:
        """One line for `validate`: the data and the network."""
        sizes = "-".join(str(p.size) for p in spec.populations)
        return f"{cfg.network.model} network {sizes}"

    # ----------------------------------------------------------------- the run
    def samples(self, cfg, data) -> dict[str, int]:
        """Samples each phase presents (run.json)."""
        raise NotImplementedError

    def run(self, run: Any) -> dict:
        """The protocol: open phases, present samples, checkpoint; returns the accuracy
        section of stats.json."""
        raise NotImplementedError

    def new_counts(self, phase: str, spec: NetworkSpec) -> Counts:
        return SpikeCounts(spec.names)

    def trace_meta(self, cfg, net, spec: NetworkSpec, *, learn: bool) -> tuple[dict, tuple]:
        """(meta, the streams of a phase's SpikeTrace beyond the populations' spikes:
        learning events of a learning phase, `<population>:active` ...) (trace.py lists
        the keys the chip reads)."""
        return ({"spec": spec.to_dict(), "learn": learn, "dt_ms": cfg.encoding.dt_ms,
                 "state_reset": True, "learning": {}}, ())

    def state(self, net) -> dict[str, np.ndarray]:
        """Everything of the network a checkpoint must hold to resume bit-identically."""
        return {}

    def load_state(self, net, arrays: dict[str, np.ndarray]) -> None:
        """Put a checkpoint's `state` back (the shapes are checked already)."""

    def backend(self, net) -> str:
        """The kernels in use ("cython" or "numpy")."""
        return getattr(net, "backend", None) or "numpy"

    def model_arrays(self, run: Any) -> dict[str, np.ndarray]:
        """model.npz: the trained (or imported) network."""
        return {}

    def model_stats(self, run: Any) -> dict:
        """stats.json `model`."""
        return {"network": run.cfg.network.model,
                "sizes": [p.size for p in run.spec.populations]}

    def neurobench(self, run: Any) -> dict | None:
        """stats.json `neurobench`: NeuroBench's metrics of the network (footprint,
        connection and activation sparsity, synaptic operations per sample), where the
        family can say them; None: not reported."""
        return None

    def finish(self, run: Any) -> None:
        """Files of the family's own in the run directory (plots), once stats are written."""

    def close(self, net) -> None:
        """Release what the network holds (threads), after the run or its failure."""

    # ---------------------------------------------------------- other commands
    def quick_overrides(self, cfg) -> list[str]:
        """`--set` overrides that make a run of `cfg` a smoke run of minutes, every phase
        still run (`accel-sim papers --quick`)."""
        quick = ["data.train_samples=200", "data.test_samples=100", "run.checkpoint_every=0"]
        if getattr(cfg.data, "label_samples", None) is not None:
            quick.append("data.label_samples=100")
        return quick

    def phase_samples(self, cfg) -> dict[str, int | None]:
        """Samples per phase of a run of `cfg` (the analytical estimate scales a
        calibration to them)."""
        return self.samples(cfg, self.load_data(cfg))

    def spec_for_size(self, cfg, ref: NetworkSpec) -> NetworkSpec:
        """The spec of `cfg`'s network with the inputs and outputs of `ref` (a model
        search's candidate, without reading its data)."""
        raise RunError(f"the model search does not size {self.name} networks")

    def to_nir(self, cfg, model: dict[str, np.ndarray], form: str = "exact"):
        """The trained network (its model.npz arrays) as a nir.NIRGraph, in a `form` of
        NIR_FORMS."""
        raise RunError(f"network.model {cfg.network.model}: {self.name} networks have no NIR "
                       "form")
