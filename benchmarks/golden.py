#!/usr/bin/env python
"""Golden figures of every shipped run config, to hold a restructuring to its results.

    python benchmarks/golden.py record OUT.json [--runs DIR]   # run every config, keep figures
    python benchmarks/golden.py compare BEFORE.json AFTER.json  # exact comparison, exit 1 if not

benchmarks/results/golden.json holds the figures of the code as committed; a commit that
moves one on purpose updates it and says which fix moved which number.

`record` runs every run config under configs/ (top level and papers/) through the
`accel-sim` on PATH, with a reduced number of samples (below) so that the whole set takes
minutes, plus the default config at every chip fidelity, and keeps from each stats.json
the accuracy, the frontend counts, the memory figures and per chip phase the counts,
cycles and energies. `compare` lists every figure that differs (exactly: a restructuring
must not move a number; a fix that does says which number it moved in its commit).
Configs whose data is not here (SHD) are recorded as skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: overrides per config file: few samples, every phase still run
_STDP = ["data.train_samples=40", "data.test_samples=40", "run.checkpoint_every=0"]
_CONTINUAL = ["data.train_samples=100", "data.test_samples=100", "data.classes=[0,1,2,3]",
              "run.checkpoint_every=0"]
_SURROGATE = ["data.train_samples=512", "data.test_samples=256", "learning.epochs=2",
              "learning.batch_size=128", "run.chip_batches_per_epoch=1"]
_SPIKES = ["data.train_samples=256", "data.test_samples=100", "learning.epochs=2",
           "learning.batch_size=64", "run.chip_batches_per_epoch=1"]


def _overrides(name: str) -> list[str] | None:
    """The reductions of one config (None: run as shipped)."""
    if name in ("default.yaml", "nir_snntorch_example.yaml"):
        return []
    if "_ci" in name:
        return _CONTINUAL
    if name.startswith("ssgd_nmnist") or name.startswith("ssgd_shd"):
        return _SPIKES
    if name.startswith("ssgd_"):
        return _SURROGATE
    return _STDP


def _cases() -> list[tuple[str, Path, list[str]]]:
    files = sorted(ROOT.glob("configs/*.yaml")) + sorted(ROOT.glob("configs/papers/*.yaml"))
    cases = [(str(f.relative_to(ROOT)), f, _overrides(f.name)) for f in files]
    default = ROOT / "configs/default.yaml"
    cases += [(f"configs/default.yaml@{fid}", default, [f"run.fidelity={fid}"])
              for fid in ("event",)]
    return cases


def _view(stats: dict) -> dict:
    """The figures a restructuring must keep."""
    hw = stats.get("hardware") or {}
    phases = {p: {"counts": ph["counts"], "latency_cycles": ph["latency_cycles"],
                  "energy_pj": ph["energy_pj"]} for p, ph in hw.get("phases", {}).items()}
    acc = dict(stats.get("accuracy") or {})
    if "history" in acc:  # an epoch's wall time is not a result
        acc["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in acc["history"]]
    return {"accuracy": acc, "frontend": stats.get("frontend"),
            "memory": stats.get("memory"), "hardware": phases,
            "mapping": hw.get("mapping")}


def _simpy(run_dir: Path, presentations: int = 12) -> dict:
    """The `simpy` fidelity on the default run's saved traces, with and without the
    barrier, on `edge` and on `spill` (weights streamed from DRAM, a resource the cores
    share): counts and cycles of the first presentations of each phase."""
    from accel_sim import SpikeTrace, load_hardware, simulate

    out = {}
    for phase in ("train", "infer"):
        parts = list(SpikeTrace.parts(run_dir / f"trace_{phase}"))
        head = [p for p in parts[:1]]
        for chip, barrier in (("edge", True), ("edge", False), ("spill", True),
                              ("spill", False)):
            hw = load_hardware(chip, [f"sync.barrier={str(barrier).lower()}"])
            res = simulate(_first(head[0], presentations), hw, fidelity="simpy")
            key = f"simpy:{phase}:barrier={barrier}" + ("" if chip == "edge" else f":{chip}")
            out[key] = {"status": "ok", "counts": res.counts, "cycles": res.cycles,
                        "presentation_cycles": res.presentation_cycles}
    return out


def _first(trace, n: int):
    """The first n presentations of a trace part."""
    from snn_frontend.trace import TraceBuilder

    tb = TraceBuilder(trace.meta, trace.events)
    for k, p in enumerate(trace):
        if k == n:
            break
        tb.add(p.sample, p.attempt, p.normalised, p.n_steps, p.counts, p.indices,
               decays=p.decays)
    return tb.build()


def record(out: Path, runs: Path | None) -> None:
    results: dict = {}
    base = Path(runs) if runs else Path(tempfile.mkdtemp(prefix="golden-"))
    for key, path, overrides in _cases():
        run_dir = base / key.replace("/", "_").replace("@", "_")
        cmd = ["accel-sim", "run", str(path), "--out", str(run_dir), "--no-progress"]
        for o in overrides:
            cmd += ["--set", o]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            results[key] = {"status": "skipped", "error": p.stderr.strip().splitlines()[-1:]}
            print(f"{key}: skipped ({p.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
            continue
        stats = json.loads((run_dir / "stats.json").read_text())
        results[key] = {"status": "ok", "overrides": overrides, **_view(stats)}
        print(f"{key}: ok in {wall:.1f} s", file=sys.stderr)
    results.update(_simpy(base / "configs_default.yaml"))
    out.write_text(json.dumps(results, indent=1, sort_keys=True))


def _diff(a, b, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: {'only after' if k not in a else 'only before'}")
            else:
                _diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: {a!r} -> {b!r}")


def compare(before: Path, after: Path) -> int:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    diffs: list[str] = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            diffs.append(f"{key}: {'new' if key not in a else 'gone'}")
            continue
        _diff(a[key], b[key], key, diffs)
    for d in diffs:
        print(d)
    print(json.dumps({"configs": len(b), "differences": len(diffs)}))
    return 1 if diffs else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("out", type=Path)
    r.add_argument("--runs", type=Path, help="keep the run directories here")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    a = ap.parse_args()
    os.environ.setdefault("ACCEL_SIM_DATA", str(ROOT.parent / "shared" / "data"))
    if a.cmd == "record":
        record(a.out, a.runs)
        return 0
    return compare(a.before, a.after)


if __name__ == "__main__":
    sys.exit(main())
