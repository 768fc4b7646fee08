"""The chip simulator: mapping, action counting, timing fidelities, the Chip."""
from .chip import FIDELITIES, Chip, Component, PhaseResult
from .mapping import Mapping, MappingError, NetworkShape

__all__ = ["Chip", "Component", "PhaseResult", "FIDELITIES", "Mapping", "MappingError",
           "NetworkShape"]
