"""User-facing errors: the CLI prints their message and exits with code 2."""
from __future__ import annotations

from snn_frontend.datasets import DatasetError

from .chip.mapping import MappingError
from .config import ConfigError

__all__ = ["RunError", "USER_ERRORS"]


class RunError(RuntimeError):
    """A run cannot go on because of its input or environment (not a bug)."""


USER_ERRORS = (ConfigError, DatasetError, RunError, MappingError)
