"""neuro-accel-sim: what it costs, in energy and time, to train and run an SNN on a chip."""
from snn_frontend.nir_model import NirModel, read_nir
from snn_frontend.sanafe_lif import SanafeLif, run_sanafe_lif
from snn_frontend.spec import NetworkSpec, Population, Projection
from snn_frontend.trace import SpikeTrace

from . import chip, families  # noqa: F401  (register the built-in fidelities and families)
from .api import Cost, load_energy_table, load_hardware, price, simulate
from .config import Config, ConfigError, load_config
from .errors import PricingWarning, RunError
from .families.nir import nir_spec
from .registry import register_family
from .run import NetworkFamily, resume_experiment, run_experiment
from .version import __version__

__all__ = ["__version__", "NetworkSpec", "Population", "Projection", "SpikeTrace", "load_config",
           "load_hardware", "load_energy_table", "simulate", "price", "Cost", "run_experiment",
           "resume_experiment", "Config", "ConfigError", "RunError", "PricingWarning",
           "NetworkFamily", "register_family", "read_nir", "NirModel", "nir_spec", "SanafeLif",
           "run_sanafe_lif"]
