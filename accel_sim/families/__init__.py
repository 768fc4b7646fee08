"""The built-in network families, each a plug-in registered on import:

- `stdp` (stdp/): Diehl & Cook 2015, FSpiNN, SpikeDyn, ASP: unsupervised STDP;
- `surrogate` (surrogate.py): a supervised LIF network trained by surrogate-gradient BPTT;
- `nir` (nir.py): a network imported from a NIR file, for inference.

The interface they implement is accel_sim/run/family.py; docs/architecture.md shows how
to add one.
"""
from . import stdp  # noqa: I001  (registered in this order: the order configs list them)
from . import surrogate
from . import nir

__all__ = ["stdp", "surrogate", "nir"]
