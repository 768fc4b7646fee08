"""Architecture sweeps (`accel-sim sweep`): points over any config keys, frontend runs shared
through a trace cache, a local process pool or a Dask cluster, results.csv, Pareto fronts."""
from .run import SweepOutcome, default_sweep_dir, run_sweep
from .spec import Point, expand, load_sweep

__all__ = ["Point", "SweepOutcome", "default_sweep_dir", "expand", "load_sweep", "run_sweep"]
