"""The run layer: one driver for every network family (driver.py), what a family's
protocol works with (context.py), the plug-in interface (family.py), checkpoints and the
run directory."""
from .driver import (
           Prepared,
           collect_stats,
           prepare,
           progress_enabled,
           resume_experiment,
           run_experiment,
)
from .family import Counts, NetworkFamily, SpikeCounts
from .rundir import default_run_dir

__all__ = ["run_experiment", "resume_experiment", "prepare", "Prepared", "collect_stats",
           "progress_enabled", "default_run_dir", "NetworkFamily", "Counts", "SpikeCounts"]
