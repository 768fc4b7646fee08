"""User-facing errors (the CLI prints their message and exits with code 2) and warnings.

Every error class of the package lives here (the lowest layer), so that each layer
raises them without importing the layers that define the rest.
"""
from __future__ import annotations

from typing import Iterable

from snn_frontend.datasets import DatasetError
from snn_frontend.files import FileWriteError
from snn_frontend.spec import SpecError
from snn_frontend.trace import TraceError

__all__ = ["RunError", "ConfigError", "MappingError", "TableError", "PricingWarning", "USER_ERRORS"]


class RunError(RuntimeError):
    """A run cannot go on because of its input or environment (not a bug)."""


class ConfigError(ValueError):
    """A bad config or input; `problems` holds one line per problem. `infeasible`: every
    problem is a chip that cannot hold the network (a sweep records such a point as
    infeasible instead of refusing the sweep)."""

    def __init__(self, problems: Iterable[str], source: str | None = None, *,
                 infeasible: bool = False):
        self.problems = list(problems)
        self.source = source
        self.infeasible = infeasible
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in self.problems))


class MappingError(ValueError):
    """The network cannot be placed on the chip (a user error: exit 2)."""


class TableError(ValueError):
    """An energy table that cannot price this chip (a user error: exit 2)."""


USER_ERRORS = (ConfigError, DatasetError, RunError, MappingError, TableError, SpecError,
               TraceError, FileWriteError)


class PricingWarning(UserWarning):
    """Counts that price with a known bias (e.g. neuron updates counted without the
    frontend's `:active` stream on a chip whose update rule needs it)."""
