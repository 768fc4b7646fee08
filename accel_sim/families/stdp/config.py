"""The STDP family's sections of a config: `network` (Diehl & Cook's network and the
variants' structure) and `learning` (triplet STDP and the variants' mechanisms).

Every default is the Diehl & Cook 2015 reference-code value (docs/equations.md lists the
sources); `MODEL_DEFAULTS` says what FSpiNN, SpikeDyn and ASP change.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from ...config.base import LearningBase, Millivolt, NetworkBase, NonNeg, Pos, Section

__all__ = ["StdpNetworkConfig", "StdpLearningConfig", "ExcConfig", "InhConfig",
           "SynapseConfig", "MODELS", "MODEL_DEFAULTS"]

MODELS = ("diehl_cook", "fspinn", "spikedyn", "asp")


class ExcConfig(Section):
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


class InhConfig(Section):
    v_rest_mv: Millivolt = -60.0
    v_reset_mv: Millivolt = -45.0
    v_thresh_mv: Millivolt = -40.0
    tau_ms: Pos = 10.0
    refractory_ms: NonNeg = 2.0


class SynapseConfig(Section):
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


class StdpNetworkConfig(NetworkBase):
    model: Literal[MODELS] = "diehl_cook"  # type: ignore[valid-type]
    n_excitatory: Annotated[int, Field(gt=0, le=100_000)] = 100
    state_reset: bool = True  # reset v, g, traces at each presentation (False: integrate the rest)
    init_model: Optional[str] = None  # model.npz of a finished run: start from its weights/theta
    inhibition: Literal["population", "lateral"] = "population"  # lateral: no inh population
    w_lateral: NonNeg = 17.0  # direct lateral inhibition: g_i += w_lateral per other spike
    # input -> exc delays (D&C's code: U(0, 10) ms): each synapse's delay drawn once from the
    # run seed, U[0, max) truncated to whole dt steps (0 .. max/dt - 1); 0: none. A whole
    # number of encoding.dt_ms steps (docs/equations.md, "Input delays")
    input_delay_max_ms: NonNeg = 0.0
    exc: ExcConfig = ExcConfig()
    inh: InhConfig = InhConfig()
    synapse: SynapseConfig = SynapseConfig()


class StdpLearningConfig(LearningBase):
    rule: Literal["triplet_stdp"] = "triplet_stdp"
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


#: What each model changes from the Diehl & Cook defaults (docs/equations.md, "Variants").
#: Filled in under the user's config: a key the config sets always wins.
MODEL_DEFAULTS: dict[str, dict] = {
    "diehl_cook": {},
    "fspinn": {
        "network": {"inhibition": "lateral",
                    "weights": {"kind": "fixed", "bits": 8, "frac_bits": 8,
                                "rounding": "stochastic"}},
        "learning": {"depression_on_pre": False, "timestep_updates": True,
                     "update_every_steps": 10, "adaptive_potentiation": True,
                     "adaptive_inhibition": True, "inhibition_target_spikes": 10.0},
    },
    "spikedyn": {
        "network": {"inhibition": "lateral"},
        "learning": {"timestep_updates": True, "update_every_steps": 700,
                     "spurious_update_reduction": True, "spurious_min_spikes": 2,
                     "weight_decay": True, "weight_decay_rate": 1e-4,
                     "adaptive_rates": True, "rate_ref_spikes": 3.0},
    },
    "asp": {"learning": {"asp_leak": True, "asp_leak_rate": 1e-3}},
}
