"""`accel-sim export RUN_DIR --format nir`: a trained network of this project as a NIR file.

The surrogate-gradient network (docs/equations.md) maps onto NIR exactly:

    input -> Linear(W0^T) -> Delay(dt) -> LIF (hidden_1) -> ... -> Linear -> Delay(dt) -> LI

LIF: tau = tau_mem, v_leak = 0, v_threshold = 1, v_reset = 0, r = 1 / (1 - beta) so that
the exact integration adds each input unscaled (V = beta V + h), reset by subtraction; the
readout LI: tau = tau_readout, r = 1 (O = beta_out O + (1 - beta_out) a). The Delay of one
step is the network's synaptic delay (an input spike at step k - 1 reaches step k).
Re-import it with `network.dt_ms` = the run's `encoding.dt_ms`,
`network.nir_integration: {lif: exact, li: exact}`, `network.nir_reset: {lif: subtract}`.

The Diehl & Cook family has no NIR form (conductance-based neurons with adaptive
thresholds, an inhibitory population or direct lateral inhibition): a clear error.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .config import load_config
from .errors import RunError
from .rundir import MODEL, read_npz

__all__ = ["REIMPORT_SETTINGS", "export_nir"]

#: the import settings that reproduce an exported surrogate network
REIMPORT_SETTINGS = {"nir_integration": {"lif": "exact", "li": "exact"},
                     "nir_reset": {"lif": "subtract"}}


def export_nir(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write RUN_DIR's trained network as NIR (default RUN_DIR/model.nir)."""
    try:
        import nir
    except ImportError:
        raise RunError('export --format nir needs the nir package: pip install '
                       '"neuro-accel-sim[nir]"') from None
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.resolved.yaml"
    if not cfg_path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no config.resolved.yaml)")
    cfg = load_config(cfg_path)
    if cfg.network.model != "surrogate":
        raise RunError(f"{cfg.network.model}: the Diehl & Cook family has no NIR form "
                       "(conductance-based neurons with adaptive thresholds and their "
                       "inhibition); the surrogate-gradient network exports")
    n_hidden = len(cfg.network.hidden_sizes)
    z = read_npz(run_dir / MODEL, "model", {f"W{i}": None for i in range(n_hidden + 1)})
    dt_s = cfg.encoding.dt_ms * 1e-3
    tau, tau_out = cfg.network.tau_mem_ms * 1e-3, cfg.network.tau_readout_ms * 1e-3
    beta = np.exp(-dt_s / tau)
    n_in = z["W0"].shape[0]
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges, prev = [], "input"
    for i in range(n_hidden + 1):
        W = np.asarray(z[f"W{i}"], np.float32)
        n = W.shape[1]
        fc, delay = f"fc{i}", f"delay{i}"
        nodes[fc] = nir.Linear(weight=W.T.copy())
        nodes[delay] = nir.Delay(delay=np.full(n, dt_s))
        if i < n_hidden:
            name = f"hidden_{i + 1}"
            nodes[name] = nir.LIF(tau=np.full(n, tau), r=np.full(n, 1.0 / (1.0 - beta)),
                                  v_leak=np.zeros(n), v_threshold=np.ones(n),
                                  v_reset=np.zeros(n))
        else:
            name = "readout"
            nodes[name] = nir.LI(tau=np.full(n, tau_out), r=np.ones(n), v_leak=np.zeros(n))
        edges += [(prev, fc), (fc, delay), (delay, name)]
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([z[f"W{n_hidden}"].shape[1]])})
    edges.append((prev, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges,
                         metadata={"exported_by": "neuro-accel-sim", "dt_ms": cfg.encoding.dt_ms,
                                   "reimport": str(REIMPORT_SETTINGS)})
    dest = Path(out) if out is not None else run_dir / "model.nir"
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        nir.write(str(tmp), graph)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunError(f"cannot write {dest}: {exc.strerror or exc}") from None
    return dest
