"""The config schema: what a run is (describe), not how it runs (implement).

The sections every run has (`data`, `encoding`, `run`, `hardware`, `energy`) are defined
here; `network` and `learning` belong to the network family that `network.model` names
(accel_sim/families/). `config_model()` generates the validating model from the
registries: `network` is a discriminated union on `network.model` over every registered
family's section, `learning` one on `learning.rule`, and `run.fidelity` takes the
registered fidelities. Units live in the key names.

`cross_checks` holds what one section cannot check alone: a chip without its energy
table, a family's own rules across sections, a fidelity that cannot model the chip, and
whether the chip can hold the network (the last are "infeasible", not wrong).
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, create_model, model_validator

from .. import registry
from ..registry import LEARNING_PHASES, PHASES
from .base import LearningBase, NetworkBase, NonNeg, Pos, PosInt, Section
from .energy import EnergyTableConfig
from .hardware import HardwareConfig

__all__ = ["Config", "DataConfig", "EncodingConfig", "EXECUTION_ONLY", "RunConfig", "PHASES",
           "config_model", "cross_checks"]


class DataConfig(Section):
    # images (digits, mnist, fashion_mnist) or recorded spikes (nmnist: the N-MNIST subset,
    # shd: Spiking Heidelberg Digits); events: recorded input spikes in data.path (an .npz
    # with `spikes`, bool samples x steps x inputs, and optionally `labels`). Which ones a
    # network reads is its family's to say.
    dataset: Literal["digits", "mnist", "fashion_mnist", "nmnist", "shd", "events"] = "digits"
    root: Optional[str] = None  # else $ACCEL_SIM_DATA, else the user cache folder
    path: Optional[str] = None  # dataset: events
    train_samples: Optional[PosInt] = None  # None: the whole training split
    label_samples: Optional[PosInt] = None  # None: the same samples as training
    test_samples: Optional[PosInt] = None  # None: the whole test split
    classes: Optional[list[Annotated[int, Field(ge=0)]]] = None  # None: all classes
    shuffle: bool = False  # training order: reshuffled each epoch with the run seed (D&C: file order)
    # class_incremental: tasks are the classes in order (data.classes or 0..9), equal samples
    # per task (train_samples / tasks), no re-feeding; evaluated after every task
    protocol: Literal["iid", "class_incremental"] = "iid"
    # validation: evaluate on the last `validation_samples` images of the training split,
    # which are then never trained or labelled on (choose settings without the test set)
    evaluate_on: Literal["test", "validation"] = "test"
    validation_samples: PosInt = 10000


class EncodingConfig(Section):
    # poisson: rate code (STDP models); latency: one spike per pixel brighter than
    # latency_theta at tau ln(x / (x - theta)) (surrogate network; recorded spikes ignore it)
    scheme: Literal["poisson", "latency"] = "poisson"
    latency_tau_ms: Pos = 20.0  # Perez-Nieves & Goodman: tau_eff = 20 ms
    latency_theta: Annotated[float, Field(ge=0, lt=1)] = 0.2
    max_rate_hz: Pos = 63.75  # pixel 255 -> 63.75 Hz (D&C: pixel/8 * intensity 2)
    present_ms: Pos = 350.0
    rest_ms: NonNeg = 150.0
    dt_ms: Annotated[float, Field(gt=0, le=10)] = 0.5
    retry_min_spikes: Annotated[int, Field(ge=0)] = 5  # re-present if fewer exc spikes
    retry_rate_step_hz: NonNeg = 31.875  # D&C: intensity += 1
    max_retries: Annotated[int, Field(ge=0, le=100)] = 10

    @model_validator(mode="after")
    def _whole_steps(self):
        for key in ("present_ms", "rest_ms"):
            steps = getattr(self, key) / self.dt_ms
            if abs(steps - round(steps)) > 1e-9:
                raise ValueError(f"{key} must be a whole number of dt_ms steps ({steps:g} steps)")
        return self


class ChipSample(Section):
    """run.chip_sample: replay a random sample of the presentations at the detailed
    fidelity and all at the fastest; the latency is a ratio estimate with a 95 % interval
    (accel_sim/chip/sampling.py). Exactly one of `presentations` (a simple random sample
    of that many) and `fraction` (each presentation with that probability)."""

    presentations: Optional[Annotated[int, Field(ge=2)]] = None
    fraction: Optional[Annotated[float, Field(gt=0, le=1)]] = None
    seed: int = 0

    @model_validator(mode="after")
    def _one(self):
        if (self.presentations is None) == (self.fraction is None):
            raise ValueError("give exactly one of presentations (a count) and fraction")
        return self


#: `run` keys that change how a run executes, never its results: the kernels are
#: bit-identical at any thread count, the sharded replay adds its shards' totals in order
EXECUTION_ONLY = ("run.progress", "run.threads", "run.trace_phases", "run.checkpoint_every",
                  "run.chip_workers", "run.chip_executor", "run.chip_scheduler")


class RunConfig(Section):
    phases: list[Literal[PHASES]] = list(PHASES)  # type: ignore[valid-type]
    backend: Literal["auto", "cython", "numpy"] = "auto"
    threads: Annotated[int, Field(ge=0, le=1024)] = 0  # 0: all cores (inference phases)
    checkpoint_every: Annotated[int, Field(ge=0)] = 1000  # training samples; 0: off
    trace_phases: list[Literal[PHASES]] = ["infer"]  # type: ignore[valid-type]
    # surrogate network: training batches of every epoch the chip replays (the first ones;
    # its figures are per sample): replaying all 60,000 samples x 100 epochs would take hours
    chip_batches_per_epoch: Annotated[int, Field(ge=0)] = 1
    progress: Optional[bool] = None  # None: a bar when stderr is a terminal
    fidelity: str = "timestep"  # chip timing model: one of the registered fidelities
    # the chip replay on worker processes, each part of the trace cut into one shard per
    # worker (presentations replay independently: the same result as a serial replay);
    # 0: in this process. `chip_executor`: a local process pool or a Dask cluster (an
    # existing one at `chip_scheduler`, else a LocalCluster of `chip_workers` workers)
    chip_workers: Annotated[int, Field(ge=0, le=1024)] = 0
    chip_executor: Literal["local", "dask"] = "local"
    chip_scheduler: Optional[str] = None
    chip_sample: Optional[ChipSample] = None  # None: every presentation at `fidelity`

    @model_validator(mode="after")
    def _chip_workers(self):
        if self.chip_scheduler and self.chip_executor != "dask":
            raise ValueError("chip_scheduler is the address of a Dask scheduler: set "
                             "chip_executor: dask")
        if self.chip_executor == "dask" and not (self.chip_workers or self.chip_scheduler):
            raise ValueError("chip_executor dask needs chip_workers (a LocalCluster of that "
                             "many) or chip_scheduler (an existing cluster)")
        return self

    @model_validator(mode="after")
    def _phases(self):
        if len(set(self.phases)) != len(self.phases):
            raise ValueError("phases must not repeat")
        order = [p for p in PHASES if p in self.phases]
        if list(self.phases) != order:
            raise ValueError(f"phases must keep the order {list(PHASES)}")
        return self


class Config(Section):
    """A whole config. Instances come from `config_model()`, which narrows `network`,
    `learning` and `run.fidelity` to what is registered."""

    version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] = "run"
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    data: DataConfig = DataConfig()
    encoding: EncodingConfig = EncodingConfig()
    network: NetworkBase
    learning: LearningBase
    run: RunConfig = RunConfig()
    hardware: Optional[HardwareConfig] = None  # a chip: inline, or a name/file (configs/chips)
    energy: Optional[EnergyTableConfig] = None  # a table: inline, or a name/file (configs/energy)


def _union(members: list[type], key: str):
    """One model, or a union discriminated by `key` (pydantic needs two to discriminate)."""
    members = list(dict.fromkeys(members))
    if len(members) == 1:
        return members[0]
    return Annotated[Union[tuple(members)], Field(discriminator=key)]


_generated: dict[int, type[Config]] = {}


def config_model() -> type[Config]:
    """The validating model for the registries as they are now (rebuilt after a family
    or fidelity registers)."""
    gen = registry.generation()
    model = _generated.get(gen)
    if model is not None:
        return model
    fams = registry.families()
    if not fams:
        raise RuntimeError("no network family is registered (import accel_sim first)")
    default = registry.family_of(registry.DEFAULT_MODEL)
    names = tuple(registry.fidelities()) or ("timestep",)
    run_t = create_model("RunConfig", __base__=RunConfig,
                         fidelity=(Literal[names], "timestep"))  # type: ignore[valid-type]
    model = create_model(
        "Config", __base__=Config,
        network=(_union([f.network_config for f in fams.values()], "model"),
                 default.network_config()),
        learning=(_union([f.learning_config for f in fams.values()], "rule"),
                  default.learning_config()),
        run=(run_t, run_t()))
    _generated.clear()
    _generated[gen] = model
    return model


def cross_checks(cfg: Config) -> tuple[list[str], list[str]]:
    """(problems, infeasible): each a list of "dotted.path: message" lines. `infeasible`
    lists the ways the chip cannot hold or run the network."""
    family = registry.family_of(cfg.network.model)
    if not isinstance(cfg.learning, family.learning_config):  # the family's checks read it
        want = family.learning_config.model_fields["rule"].default
        return [f"learning.rule: network.model {cfg.network.model} is trained by "
                f"learning.rule: {want}, not {cfg.learning.rule}"], []
    problems = list(family.check(cfg))
    hw = cfg.hardware
    if hw is None:
        if cfg.energy is not None:
            problems.append("energy: a table needs a hardware section (the chip to price)")
        return problems, []
    if cfg.energy is None:
        problems.append("hardware: a chip needs an energy table: add e.g. 'energy: generic_45nm'")
    fid = registry.fidelity(cfg.run.fidelity)
    fastest = next(iter(registry.fidelities()))
    if cfg.run.chip_sample is not None and fid.name == fastest:
        problems.append(f"run.chip_sample: a sampled replay runs a sample at a detailed "
                        f"fidelity and every presentation at {fastest}; run.fidelity is "
                        f"{fastest}: choose another (" + ", ".join(
                            n for n in registry.fidelities() if n != fastest) + ")")
    if not hw.sync.barrier and not fid.barrier_free:
        free = [f.name for f in registry.fidelities().values() if f.barrier_free]
        problems.append(f"run.fidelity: {fid.name} models chips with a barrier after every step; "
                        f"a chip without one (hardware.sync.barrier: false) needs run.fidelity: "
                        f"{' or '.join(free)}")
    return problems, _chip_fit(cfg, family)


def _chip_fit(cfg: Config, family) -> list[str]:
    """Whether the chip can hold and run the network (known before the data is read;
    the mapping checks the rest once the network is built)."""
    hw, bits = cfg.hardware, cfg.network.weights.storage_bits
    out = []
    need, have = family.neurons(cfg), hw.n_cores * hw.cores.neurons_per_core
    if need is not None and need > have:
        where = "chip" if hw.n_chips == 1 else f"system of {hw.n_chips} chips"
        out.append(f"hardware.cores: the network has {need} neurons but the {where} holds "
                   f"{hw.n_cores} x {hw.cores.neurons_per_core} = {have}")
    if hw.formats.weight_bits is not None and hw.formats.weight_bits != bits:
        out.append(f"hardware.formats.weight_bits: the network's weights are {bits}-bit "
                   "(network.weights); leave weight_bits unset (null)")
    if hw.sram.word_bits < bits:
        out.append(f"hardware.sram.word_bits: a {hw.sram.word_bits}-bit word is narrower than "
                   f"one {bits}-bit weight")
    learning = [p for p in cfg.run.phases if p in LEARNING_PHASES]
    if learning and not hw.cores.learning_unit:
        out.append(f"hardware.cores.learning_unit: training on chip needs a learning unit (or "
                   f"drop {', '.join(repr(p) for p in learning)} from run.phases)")
    return out
