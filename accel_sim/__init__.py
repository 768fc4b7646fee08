"""neuro-accel-sim: what it costs, in energy and time, to train and run an SNN on a chip."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neuro-accel-sim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

from .config import Config, ConfigError, load_config  # noqa: E402
from .errors import RunError  # noqa: E402
from .pipeline import resume_experiment, run_experiment  # noqa: E402

__all__ = ["__version__", "Config", "ConfigError", "RunError", "load_config", "run_experiment",
           "resume_experiment"]
