"""What every config section is built from: the strict section model, the number types
with units in their names, the number formats a network is stored in, and the base of
the sections a network family owns (`network`, `learning`)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Section", "Pos", "NonNeg", "PosInt", "NonNegInt", "Millivolt",
           "WeightFormatConfig", "StateFormatConfig", "NetworkBase", "LearningBase",
           "NoLearning"]

Pos = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Millivolt = Annotated[float, Field(ge=-1000, le=1000)]


class Section(BaseModel):
    """A config section: frozen, strict types, unknown keys and NaN/inf refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True,
                              allow_inf_nan=False)


class WeightFormatConfig(Section):
    """Number format of the stored weights (FSpiNN: fixed point)."""

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


class StateFormatConfig(Section):
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


class NetworkBase(Section):
    """The `network` section's common part. A family's own section subclasses it and
    narrows `model` to the names it answers (the discriminator of the union)."""

    model: str
    weights: WeightFormatConfig = WeightFormatConfig()
    state_format: StateFormatConfig = StateFormatConfig()


class LearningBase(Section):
    """The `learning` section's common part: `rule` discriminates the union."""

    rule: str


class NoLearning(LearningBase):
    """Families that only run inference (an imported network): nothing to set."""

    rule: Literal["none"] = "none"
