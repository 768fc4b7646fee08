"""Files of a run directory: atomic JSON, the resolved config, summary.txt."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snn_frontend.files import atomic_write

from .errors import RunError

__all__ = ["write_json", "write_text", "read_json", "format_summary", "format_tasks"]


def write_text(path: Path, text: str) -> None:
    """Write atomically (temp file + rename); a full disk is a FileWriteError (exit 2)."""
    with atomic_write(path, "w") as fh:
        fh.write(text)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path} not found: is this a run directory?") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from None


_DESCRIPTIONS = {
    "samples": "samples presented",
    "presentations": "presentations incl. re-presentations of silent samples",
    "time_steps": "simulated time steps",
    "idle_rest_steps": "rest steps replaced by a state reset",
    "input_spikes": "input spikes",
    "exc_spikes": "excitatory spikes",
    "inh_spikes": "inhibitory spikes",
    "synaptic_events": "spike x fan-out deliveries",
    "neuron_updates": "neuron state updates (exc + inh)",
    "weight_updates": "STDP weight read-modify-writes",
    "normalisation_ops": "weights rescaled by column normalisation",
    "trace_updates": "STDP trace decays and sets",
    "theta_updates": "adaptive threshold decays and increments",
    # the surrogate network (lists: per hidden layer, or per projection input -> readout)
    "batches": "mini-batches (one Adam step each)",
    "hidden_spikes": "spikes per hidden layer",
    "synops": "synaptic additions per projection",
    "surrogate_evals": "surrogate derivatives evaluated per hidden layer",
    "active_entries": "(step, neuron) entries the backward touched",
    "weight_grad_macs": "weight-gradient multiply-adds per projection",
    "input_grad_macs": "input-spike-gradient multiply-adds per projection",
    "optimizer_steps": "Adam steps",
    "backward_kept_bytes": "bytes kept for the backward, summed over batches",
}


def _line(key: str, value: Any, comment: str = "") -> str:
    if isinstance(value, float):
        v = f"{value:.6g}"
    else:
        v = str(value)
    return f"{key:<48} {v:>16}" + (f"   # {comment}" if comment else "")


def _items(key: str, value: Any):
    """(key, value) pairs of a scalar, or of each entry of a per-layer list (key.0, ...)."""
    if isinstance(value, list):
        for i, v in enumerate(value):
            yield f"{key}.{i}", v
    else:
        yield key, value


def format_summary(stats: dict, run: dict) -> str:
    """A gem5-style table: one `dotted.name   value   # meaning` per line."""
    out = ["---------- Begin Simulation Statistics ----------",
           _line("run.name", run.get("name", "")),
           _line("run.model", run.get("model", ""), "network model"),
           _line("run.backend", run.get("backend", ""), "frontend kernels"),
           _line("run.threads", run.get("threads", ""), "threads for inference phases")]
    for stage, sec in run.get("timing_s", {}).items():
        out.append(_line(f"run.timing_s.{stage}", float(sec), "wall-clock seconds"))
    acc = stats.get("accuracy", {})
    for k, v in acc.items():
        if isinstance(v, (int, float)):
            out.append(_line(f"accuracy.{k}", float(v)))
    for phase, counts in stats.get("frontend", {}).items():
        for k, v in counts.items():
            if k == "per_sample":
                continue
            for key, x in _items(f"frontend.{phase}.{k}", v):
                out.append(_line(key, x, _DESCRIPTIONS.get(k, "")))
        for k, v in counts.get("per_sample", {}).items():
            for key, x in _items(f"frontend.{phase}.per_sample.{k}", v):
                out.append(_line(key, float(x)))
    for k, v in stats.get("model", {}).items():
        if k in ("active_fraction", "spike_fraction"):
            for key, x in _items(f"model.{k}", v):
                out.append(_line(key, float(x), "per hidden layer"))
    mem = stats.get("memory", {})
    for k, v in mem.get("weight_bytes", {}).items():
        out.append(_line(f"memory.weight_bytes.{k}", v, f"{mem.get('weight_bits')}-bit weights"))
    for k, v in mem.get("state_bytes", {}).items():
        out.append(_line(f"memory.state_bytes.{k}", v, f"{mem.get('state_bits')}-bit state"))
    if mem:
        out.append(_line("memory.total_bytes", mem.get("total_bytes")))
    out.append("---------- End Simulation Statistics   ----------")
    return "\n".join(out) + "\n"


def format_tasks(tasks: list[dict]) -> str:
    """Continual learning: accuracy after each task on the newest and on earlier tasks."""
    out = ["", "# continual learning (class-incremental): accuracy after each task",
           f"# {'task':>4} {'class':>5} {'samples':>8} {'newest %':>9} {'earlier %':>10} "
           f"{'all learned %':>14}"]
    for r in tasks:
        earlier = "-" if r["earlier"] is None else f"{100 * r['earlier']:.1f}"
        out.append(f"# {r['task']:>4} {r['class']:>5} {r['samples']:>8} {100 * r['newest']:>9.1f} "
                   f"{earlier:>10} {100 * r['all_learned']:>14.1f}")
    return "\n".join(out) + "\n"
