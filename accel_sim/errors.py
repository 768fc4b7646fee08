"""User-facing errors: the CLI prints their message and exits with code 2."""
from __future__ import annotations

from snn_frontend.datasets import DatasetError

from snn_frontend.files import FileWriteError
from snn_frontend.spec import SpecError
from snn_frontend.trace import TraceError

from .chip.mapping import MappingError
from .config import ConfigError
from .energy.table import TableError

__all__ = ["RunError", "USER_ERRORS"]


class RunError(RuntimeError):
    """A run cannot go on because of its input or environment (not a bug)."""


USER_ERRORS = (ConfigError, DatasetError, RunError, MappingError, TableError, SpecError, TraceError,
               FileWriteError)
