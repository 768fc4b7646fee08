"""The chip simulator: topology, mapping, action counting, timing fidelities, the Chip.

Nothing here names a model family or a population: the chip sees a `NetworkSpec`.
"""
from .chip import Chip, PhaseResult, active_warnings, merge_totals, replay_shard
from .mapping import Mapping, MappingError, place

__all__ = ["Chip", "PhaseResult", "Mapping", "MappingError", "place", "active_warnings",
           "merge_totals", "replay_shard"]
