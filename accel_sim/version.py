"""The installed package's version (a module of its own, so that any layer can read it
without importing the package's top level)."""
from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("neuro-accel-sim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
