"""The config schema: what a run is (describe), not how it runs (implement).

Frozen pydantic models with `extra="forbid"` and strict types; every default is
the Diehl & Cook 2015 reference-code value (../docs/equations.md lists the
sources). Units live in the key names.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..registry import PHASES

__all__ = [
    "Config", "DataConfig", "EncodingConfig", "NetworkConfig", "ExcConfig", "InhConfig",
    "SynapseConfig", "LearningConfig", "RunConfig", "PHASES",
]

Pos = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
PosInt = Annotated[int, Field(gt=0)]
Millivolt = Annotated[float, Field(ge=-1000, le=1000)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True,
                              allow_inf_nan=False)


class DataConfig(_Section):
    # images (digits, mnist, fashion_mnist) or recorded spikes (nmnist: the N-MNIST subset,
    # shd: Spiking Heidelberg Digits; surrogate network only)
    # events: recorded input spikes in data.path (an .npz with `spikes`, bool samples x
    # steps x inputs, and optionally `labels`; an imported NIR network only)
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


class EncodingConfig(_Section):
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


class ExcConfig(_Section):
    v_rest_mv: Millivolt = -65.0
    v_reset_mv: Millivolt = -65.0
    v_thresh_mv: Millivolt = -52.0
    tau_ms: Pos = 100.0
    refractory_ms: NonNeg = 5.0
    lockout_ms: NonNeg = 50.0  # D&C 'timer' quirk: dtimer/dt = 0.1, spike needs timer > 5 ms
    e_inh_mv: Millivolt = -100.0
    theta_init_mv: Millivolt = 20.0
    theta_plus_mv: NonNeg = 0.05
    tau_theta_ms: Pos = 1e7
    theta_offset_mv: Millivolt = 20.0


class InhConfig(_Section):
    v_rest_mv: Millivolt = -60.0
    v_reset_mv: Millivolt = -45.0
    v_thresh_mv: Millivolt = -40.0
    tau_ms: Pos = 10.0
    refractory_ms: NonNeg = 2.0


class SynapseConfig(_Section):
    tau_ge_ms: Pos = 1.0
    tau_gi_ms: Pos = 2.0
    e_exc_mv: Millivolt = 0.0
    w_exc_inh: NonNeg = 10.4
    w_inh_exc: NonNeg = 17.0
    w_init_min: NonNeg = 0.003  # D&C: (U[0,1) + 0.01) * 0.3
    w_init_max: NonNeg = 0.303

    @model_validator(mode="after")
    def _range(self):
        if self.w_init_max <= self.w_init_min:
            raise ValueError("w_init_max must be greater than w_init_min")
        return self


class WeightFormatConfig(_Section):
    """Number format of the plastic weights (FSpiNN: fixed point)."""

    kind: Literal["float32", "fixed"] = "float32"
    bits: Annotated[int, Field(ge=1, le=32)] = 8  # fixed: total bits (unsigned)
    frac_bits: Annotated[int, Field(ge=0, le=32)] = 8  # fixed: fraction bits
    rounding: Literal["truncate", "nearest", "stochastic"] = "nearest"

    @model_validator(mode="after")
    def _fits(self):
        if self.kind == "fixed" and self.frac_bits > self.bits:
            raise ValueError("frac_bits must not exceed bits (weights are unsigned Qm.n)")
        return self

    @property
    def storage_bits(self) -> int:
        return 32 if self.kind == "float32" else self.bits


class StateFormatConfig(_Section):
    """Number format of the neuron state: membrane potentials and adaptive thresholds."""

    kind: Literal["float64", "fixed"] = "float64"
    bits: Annotated[int, Field(ge=2, le=64)] = 24  # fixed: total bits (signed, two's complement)
    frac_bits: Annotated[int, Field(ge=0, le=62)] = 8  # fixed: fraction bits (round to nearest)

    @model_validator(mode="after")
    def _fits(self):
        if self.kind == "fixed":
            if self.frac_bits >= self.bits:
                raise ValueError("frac_bits must be below bits (the state is signed Qm.n)")
            if (2 ** (self.bits - self.frac_bits - 1)) <= 100:
                raise ValueError(f"a signed Q{self.bits - self.frac_bits}.{self.frac_bits} state "
                                 f"reaches only +-{2 ** (self.bits - self.frac_bits - 1)}: it cannot "
                                 "hold the -65 mV resting potential; give it more integer bits")
        return self

    @property
    def storage_bits(self) -> int:
        return 32 if self.kind == "float64" else self.bits  # float: stored as float32


class NetworkConfig(_Section):
    model: Literal["diehl_cook", "fspinn", "spikedyn", "asp", "surrogate", "nir"] = "diehl_cook"
    n_excitatory: Annotated[int, Field(gt=0, le=100_000)] = 100
    state_reset: bool = True  # reset v, g, traces at each presentation (False: integrate the rest)
    init_model: Optional[str] = None  # model.npz of a finished run: start from its weights/theta
    inhibition: Literal["population", "lateral"] = "population"  # lateral: no inh population
    w_lateral: NonNeg = 17.0  # direct lateral inhibition: g_i += w_lateral per other spike
    weights: WeightFormatConfig = WeightFormatConfig()
    state_format: StateFormatConfig = StateFormatConfig()
    exc: ExcConfig = ExcConfig()
    inh: InhConfig = InhConfig()
    synapse: SynapseConfig = SynapseConfig()
    # ---- the surrogate network (Perez-Nieves & Goodman 2021; docs/equations.md): input ->
    # hidden LIF layers (threshold 1, reset by subtraction) -> a non-spiking leaky readout
    hidden_sizes: list[Annotated[int, Field(gt=0, le=100_000)]] = [200, 200]
    tau_mem_ms: Pos = 10.0
    tau_readout_ms: Pos = 10.0  # SHD: 20 ms
    # normal: N(0, init_gain (1 - beta) / sqrt(fan_in)) (F-MNIST); uniform: U(+-1/sqrt(fan_in))
    init: Literal["normal", "uniform"] = "normal"
    init_gain: Pos = 20.0
    # ---- a network imported from NIR (docs/nir.md): the file, the step its continuous-time
    # parameters are taken at (None: encoding.dt_ms), and per neuron type (lif, cuba_lif,
    # if, li) the integration (euler | exact) and reset (zero | subtract); unset: euler, zero
    path: Optional[str] = None
    dt_ms: Optional[Pos] = None
    nir_integration: dict[Literal["lif", "cuba_lif", "if", "li"],
                          Literal["euler", "exact"]] = {}
    nir_reset: dict[Literal["lif", "cuba_lif", "if"], Literal["zero", "subtract"]] = {}


class LearningConfig(_Section):
    rule: Literal["triplet_stdp", "bptt"] = "triplet_stdp"
    epochs: Annotated[int, Field(ge=1, le=1000)] = 1
    nu_pre: NonNeg = 1e-4
    nu_post: NonNeg = 1e-2
    tau_pre_ms: Pos = 20.0
    tau_post1_ms: Pos = 20.0
    tau_post2_ms: Pos = 40.0
    w_max: Pos = 1.0
    normalise: bool = True
    norm_total: Optional[Pos] = None  # None: 78 * n_inputs / 784 (D&C: 78 for MNIST)
    # ---- mechanisms of the variants (docs/equations.md, "Variants"); each on/off on its own
    depression_on_pre: bool = True  # off: potentiation-only STDP (FSpiNN "reduced STDP")
    timestep_updates: bool = False  # accumulate weight changes, write every update_every_steps
    update_every_steps: Annotated[int, Field(ge=1, le=100_000)] = 10
    adaptive_potentiation: bool = False  # nu_post x clip(target / max count of last sample)
    potentiation_target_spikes: Pos = 3.0
    potentiation_gain_min: Pos = 0.5
    potentiation_gain_max: Pos = 2.0
    adaptive_inhibition: bool = False  # w_lateral x clip(exc spikes of last sample / target)
    inhibition_target_spikes: Pos = 20.0
    inhibition_gain_min: Pos = 0.5
    inhibition_gain_max: Pos = 2.0
    weight_decay: bool = False  # W <- W (1 - weight_decay_rate) before every presentation
    weight_decay_rate: Annotated[float, Field(ge=0, lt=1)] = 1e-4
    spurious_update_reduction: bool = False  # (timestep updates) drop a neuron's changes
    spurious_min_spikes: Annotated[int, Field(ge=1)] = 2  # unless it fired this often in the window
    # SpikeDyn's adaptive learning rates (timestep updates): a neuron's changes in a window
    # are written back scaled by min(its spikes in the window / rate_ref_spikes, rate_gain_max)
    adaptive_rates: bool = False
    rate_ref_spikes: Pos = 3.0
    rate_gain_max: Pos = 3.0
    asp_leak: bool = False  # ASP: weights of uncorrelated pre/post pairs leak each presentation
    asp_leak_rate: Annotated[float, Field(ge=0, lt=1)] = 1e-3
    # ---- surrogate-gradient BPTT (rule bptt; Perez-Nieves & Goodman 2021, seeds.md 1)
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


class RunConfig(_Section):
    phases: list[Literal[PHASES]] = list(PHASES)  # type: ignore[valid-type]
    backend: Literal["auto", "cython", "numpy"] = "auto"
    threads: Annotated[int, Field(ge=0, le=1024)] = 0  # 0: all cores (inference phases)
    checkpoint_every: Annotated[int, Field(ge=0)] = 1000  # training samples; 0: off
    trace_phases: list[Literal[PHASES]] = ["infer"]  # type: ignore[valid-type]
    # surrogate network: training batches of every epoch the chip replays (the first ones;
    # its figures are per sample): replaying all 60,000 samples x 100 epochs would take hours
    chip_batches_per_epoch: Annotated[int, Field(ge=0)] = 1
    progress: Optional[bool] = None  # None: a bar when stderr is a terminal
    fidelity: Literal["timestep", "event"] = "timestep"  # chip timing model

    @model_validator(mode="after")
    def _phases(self):
        if len(set(self.phases)) != len(self.phases):
            raise ValueError("phases must not repeat")
        order = [p for p in PHASES if p in self.phases]
        if list(self.phases) != order:
            raise ValueError(f"phases must keep the order {list(PHASES)}")
        return self


class Config(_Section):
    version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] = "run"
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    data: DataConfig = DataConfig()
    encoding: EncodingConfig = EncodingConfig()
    network: NetworkConfig = NetworkConfig()
    learning: LearningConfig = LearningConfig()
    run: RunConfig = RunConfig()
    hardware: Optional["HardwareConfig"] = None  # a chip: inline, or a name/file (configs/chips)
    energy: Optional["EnergyTableConfig"] = None  # a table: inline, or a name/file (configs/energy)

    @model_validator(mode="after")
    def _chip_fits(self):
        hw = self.hardware
        if hw is None:
            if self.energy is not None:
                raise ValueError("energy needs a hardware section (the chip to price)")
            return self
        if self.energy is None:
            raise ValueError("hardware needs an energy table: add e.g. 'energy: generic_45nm'")
        weight_bits = self.network.weights.storage_bits
        problems = []
        lateral = self.network.inhibition == "lateral"
        need = self.network.n_excitatory * (1 if lateral else 2)
        if self.network.model == "nir":  # known once the file is read (the mapping checks)
            need = 0
        elif self.network.model == "surrogate":
            need = sum(self.network.hidden_sizes) + (20 if self.data.dataset == "shd" else 10)
        have = hw.cores.count * hw.cores.neurons_per_core
        if need > have:
            problems.append(f"hardware.cores: the network has {need} neurons but the chip holds "
                            f"{hw.cores.count} x {hw.cores.neurons_per_core} = {have}")
        if hw.formats.weight_bits is not None and hw.formats.weight_bits != weight_bits:
            problems.append(f"hardware.formats.weight_bits: the network's weights are "
                            f"{weight_bits}-bit (network.weights); leave weight_bits unset (null)")
        if hw.sram.word_bits < weight_bits:
            problems.append(f"hardware.sram.word_bits: a {hw.sram.word_bits}-bit word is narrower "
                            f"than one {weight_bits}-bit weight")
        if "train" in self.run.phases and not hw.cores.learning_unit:
            problems.append("hardware.cores.learning_unit: training on chip needs a learning "
                            "unit (or drop 'train' from run.phases)")
        if self.network.model == "surrogate" and weight_bits != 32:
            problems.append("network.weights: the surrogate network trains float32 weights "
                            "(kind: float32)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _family(self):
        """The supervised surrogate network and the STDP family take different settings."""
        net, lr, phases = self.network, self.learning, self.run.phases
        if net.model == "nir":
            if not net.path:
                raise ValueError("network.path: network.model nir reads a NIR file; give its path")
            if list(phases) != ["infer"]:
                raise ValueError("run.phases: an imported NIR network is run for inference "
                                 "only; use [infer]")
            if self.data.dataset == "events" and not self.data.path:
                raise ValueError("data.path: data.dataset events reads recorded spikes from "
                                 "an .npz file; give its path")
            if self.data.dataset in ("mnist", "fashion_mnist", "digits") and \
                    self.encoding.scheme != "latency":
                raise ValueError("encoding.scheme: an imported network reads images as a "
                                 "latency code (scheme: latency) or recorded events")
            return self
        if self.data.dataset == "events":
            raise ValueError("data.dataset events feeds an imported network (network.model: nir)")
        if net.model == "surrogate":
            if lr.rule != "bptt":
                raise ValueError("network.model surrogate is trained by learning.rule: bptt")
            if "label" in phases:
                raise ValueError("run.phases: the surrogate network has a readout and no "
                                 "labelling phase; use [train, infer]")
            if self.data.dataset in ("mnist", "fashion_mnist", "digits") and \
                    self.encoding.scheme != "latency":
                raise ValueError("encoding.scheme: the surrogate network reads images as a "
                                 "latency code (scheme: latency)")
            if self.data.protocol != "iid":
                raise ValueError("data.protocol: the surrogate network is trained iid")
            return self
        if lr.rule != "triplet_stdp":
            raise ValueError(f"learning.rule bptt trains network.model surrogate, not {net.model}")
        if self.data.dataset in ("nmnist", "shd"):
            raise ValueError(f"data.dataset {self.data.dataset}: recorded spikes train the "
                             "surrogate network (network.model: surrogate); STDP models read images")
        if self.encoding.scheme != "poisson":
            raise ValueError("encoding.scheme: the STDP models read images as Poisson rates")
        if "infer" in phases and "label" not in phases and "train" in phases:
            raise ValueError("run.phases: 'infer' needs 'label' (neurons are labelled before "
                             "testing)")
        return self

    @model_validator(mode="after")
    def _mechanisms(self):
        lr = self.learning
        if lr.spurious_update_reduction and not lr.timestep_updates:
            raise ValueError("learning.spurious_update_reduction needs learning.timestep_updates "
                             "(updates are committed or dropped at the end of each window)")
        if lr.adaptive_rates and not lr.timestep_updates:
            raise ValueError("learning.adaptive_rates needs learning.timestep_updates (a neuron's "
                             "changes are scaled by its spikes in the window when written back)")
        if lr.adaptive_inhibition and self.network.inhibition != "lateral":
            raise ValueError("learning.adaptive_inhibition adapts the direct lateral inhibition: "
                             "set network.inhibition: lateral")
        return self


from .energy import EnergyTableConfig  # noqa: E402
from .hardware import HardwareConfig  # noqa: E402

Config.model_rebuild()
