"""`accel-sim export RUN_DIR --format nir|nir-snntorch`: a trained network of this project as
a NIR file (exact, or in the form snnTorch's import_from_nir loads).

The run's family writes the graph (`NetworkFamily.to_nir`): the surrogate-gradient
network maps onto NIR exactly (docs/nir.md); a family without a NIR form (the STDP
family's conductance-based neurons with adaptive thresholds) is a clear error.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import registry
from .errors import RunError
from .run.rundir import MODEL, RunLock, read_npz, read_stats, run_config

__all__ = ["export_nir", "NIR_FORMS"]

#: --format -> the family's NIR form: exact (this project's own reading), or the form
#: snnTorch's import_from_nir loads (docs/nir.md, "Export")
NIR_FORMS = {"nir": "exact", "nir-snntorch": "snntorch"}
#: the file each export format writes into the run directory by default
_FILE_OF = {"nir": "model.nir", "nir-snntorch": "model.snntorch.nir"}


def export_nir(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
               fmt: str = "nir") -> Path:
    """Write RUN_DIR's trained network as NIR (default RUN_DIR/model.nir, or
    model.snntorch.nir for the snnTorch form)."""
    try:
        import nir
    except ImportError:
        raise RunError('export --format nir needs the nir package: pip install '
                       '"neuro-accel-sim[nir]"') from None
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    read_stats(run_dir)  # a finished run
    dest = Path(out) if out is not None else run_dir / _FILE_OF[fmt]
    if not dest.parent.is_dir():
        raise RunError(f"--out {dest}: there is no folder {dest.parent}")
    if dest.is_dir():
        raise RunError(f"--out {dest} is a folder; give the file to write, e.g. {dest / 'model.nir'}")
    with RunLock(run_dir, "export"):
        graph = registry.family_of(cfg).to_nir(cfg, read_npz(run_dir / MODEL, "model"),
                                               NIR_FORMS[fmt])
        tmp = dest.with_name(f".{dest.name}.tmp")
        try:
            nir.write(str(tmp), graph)
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise RunError(f"cannot write {dest}: {exc.strerror or exc}") from None
    return dest
