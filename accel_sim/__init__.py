"""neuro-accel-sim: what it costs, in energy and time, to train and run an SNN on a chip."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neuro-accel-sim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

from snn_frontend.spec import NetworkSpec, Population, Projection  # noqa: E402
from snn_frontend.trace import SpikeTrace  # noqa: E402

from .api import Cost, load_energy_table, load_hardware, price, simulate  # noqa: E402
from .config import Config, ConfigError, load_config  # noqa: E402
from .errors import RunError  # noqa: E402
from .pipeline import resume_experiment, run_experiment  # noqa: E402

__all__ = ["__version__", "NetworkSpec", "Population", "Projection", "SpikeTrace", "load_config",
           "load_hardware", "load_energy_table", "simulate", "price", "Cost", "run_experiment",
           "resume_experiment", "Config", "ConfigError", "RunError"]
