"""`accel-sim` command line: run, validate, show-config, report, compare, sweep, estimate,
search, export.

Exit codes: 0 success, 2 bad config or input (one line per problem, no
traceback), 1 internal error (traceback, please report), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import USER_ERRORS
from .version import __version__

__all__ = ["main"]


def _with_overrides(p: argparse.ArgumentParser, whose: str = "the") -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override any key of {whose} config, e.g. --set "
                        "network.n_excitatory=400 (value parsed as YAML; repeatable)")


def _with_progress(p: argparse.ArgumentParser) -> None:
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show progress bars")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show progress bars (default: only on a terminal)")


def _with_executor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local: a process pool (default); dask: a Dask distributed cluster")
    p.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: "
                        "start a LocalCluster)")
    _with_progress(p)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="accel-sim",
        description="Train and run a spiking neural network and price it on a neuromorphic chip.")
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train, label and test; write a run directory")
    run.add_argument("config", nargs="?", metavar="CONFIG",
                     help="YAML config file (configs/ has examples)")
    _with_overrides(run)
    run.add_argument("--out", metavar="RUN_DIR",
                     help="run directory (default runs/<name>-<timestamp>)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue a killed run from its last checkpoint")
    run.add_argument("--chip-workers", type=int, metavar="N",
                     help="replay the chip on N worker processes, shard by shard (the same "
                          "result; sets run.chip_workers)")
    run.add_argument("--executor", choices=["local", "dask"],
                     help="where those workers run: a local process pool (default) or a "
                          "Dask cluster (sets run.chip_executor)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="a running Dask scheduler for the replay, e.g. tcp://10.0.0.5:8786 "
                          "(sets run.chip_scheduler; implies --executor dask)")
    _with_progress(run)

    val = sub.add_parser("validate", help="check a config (its data, its network on the chip "
                                          "and its energy table), a sweep or search file, a "
                                          "chip or an energy table, without running anything")
    val.add_argument("config", metavar="FILE",
                     help="a run config, sweep or search file, chip or energy table (YAML)")
    _with_overrides(val)

    rep = sub.add_parser("report", help="regenerate a run's reports, or re-price it with "
                                        "another energy table (no re-simulation)")
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory")
    rep.add_argument("--energy", metavar="TABLE",
                     help="energy table name or file: write RUN_DIR/reprice-<table>/")

    cmp_ = sub.add_parser("compare", help="ratios B/A of memory, energy, latency and accuracy "
                                          "of two runs (compare.json, compare.md)")
    cmp_.add_argument("run_a", metavar="RUN_A", help="the reference run directory")
    cmp_.add_argument("run_b", metavar="RUN_B", help="the run compared with it")
    cmp_.add_argument("--out", metavar="DIR",
                      help="where to write compare.json/.md (default RUN_B)")

    sw = sub.add_parser("sweep", help="run every point of a sweep file (a process pool or a "
                                      "Dask cluster); results.csv, pareto.png, summary.md")
    sw.add_argument("sweep", metavar="SWEEP.yaml", help="the sweep file (configs/sweeps/)")
    sw.add_argument("--out", metavar="DIR", help="sweep directory (default sweeps/<file name>); "
                                                 "re-running the same command continues it")
    _with_overrides(sw, "every point's")
    _with_executor(sw)

    ex = sub.add_parser("export", help="write a trained network as a NIR file")
    ex.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory")
    ex.add_argument("--format", choices=["nir", "nir-snntorch"], default="nir",
                    help="nir: the network exactly; nir-snntorch: the form snnTorch's "
                         "import_from_nir loads (no delay, reset to zero, a spiking readout; "
                         "docs/nir.md)")
    ex.add_argument("--out", metavar="FILE", help="the file (default RUN_DIR/model.nir, "
                                                  "model.snntorch.nir for nir-snntorch)")

    se = sub.add_parser("search", help="SpikeDyn's model search: candidates filtered by the "
                                       "analytical memory and energy model, the feasible ones "
                                       "trained briefly; Pareto set and the selected model")
    se.add_argument("search", metavar="SEARCH.yaml", help="the search file (configs/searches/)")
    se.add_argument("--out", metavar="DIR", help="search directory (default searches/<file name>)")
    _with_overrides(se, "every candidate's")
    _with_executor(se)

    est = sub.add_parser("estimate", help="closed-form counts, memory, energy and latency per "
                                          "phase from firing rates (no replay)")
    est.add_argument("config", metavar="CONFIG", help="YAML config file with a chip")
    _with_overrides(est)
    src = est.add_mutually_exclusive_group()
    src.add_argument("--from-run", metavar="RUN_DIR",
                     help="take the activity from a run's saved traces (run.trace_phases)")
    src.add_argument("--rates", metavar="FILE",
                     help="take the network and activity from an earlier `estimate --json`")
    src.add_argument("--calibrate", type=int, default=100, metavar="N",
                     help="measure the activity with a frontend run on N samples per phase "
                          "(default 100)")
    est.add_argument("--json", action="store_true", help="print one JSON object")

    pa = sub.add_parser("papers", help="every claim of the reproduced papers next to ours: "
                                       "runs (or reuses) the shipped configs, writes papers.md")
    pa.add_argument("--quick", action="store_true",
                    help="smoke runs of minutes each (each family's reduced samples), in "
                         "their own folder: everything runs, the numbers are not the papers'")
    pa.add_argument("--out", metavar="DIR",
                    help="runs and papers.md (default runs/papers, runs/papers-quick)")
    pa.add_argument("--only", metavar="TEXT",
                    help="only the claims whose paper or claim contains TEXT, e.g. FSpiNN")
    _with_progress(pa)

    show = sub.add_parser("show-config", help="print the resolved config (all defaults filled in)")
    show.add_argument("config", nargs="?", metavar="CONFIG",
                      help="YAML config file (default: every default)")
    _with_overrides(show)
    return ap


# ---------------------------------------------------------------------- commands
def _run(args) -> int:
    from .config import load_config
    from .errors import RunError
    from .run import default_run_dir, resume_experiment, run_experiment

    chip = [f"run.chip_workers={args.chip_workers}"] if args.chip_workers is not None else []
    if args.executor or args.scheduler:
        chip.append(f"run.chip_executor={args.executor or 'dask'}")
    if args.scheduler:
        chip.append(f"run.chip_scheduler={args.scheduler}")
    if args.resume:
        if args.config or args.overrides or args.out or chip:
            raise RunError("--resume takes only the run directory (its config is reused as is)")
        out = Path(args.resume)
        stats = _interruptible(out, lambda: resume_experiment(out, progress=args.progress))
    else:
        if not args.config:
            raise RunError("run needs a CONFIG file (or --resume RUN_DIR)")
        cfg = load_config(args.config, list(args.overrides or []) + chip)
        out = Path(args.out) if args.out else default_run_dir(cfg)
        stats = _interruptible(out, lambda: run_experiment(cfg, out, progress=args.progress))
    acc = stats.get("accuracy", {})
    line = f"run directory: {out}"
    if "test" in acc:
        line += f"\ntest accuracy: {acc['test']:.4f} ({acc['n_test']} samples)"
    print(line)
    return 0


def _interruptible(out: Path, work):
    """Run `work`; on Ctrl-C say where the run is and how to continue it."""
    from .run.rundir import CHECKPOINT

    try:
        return work()
    except KeyboardInterrupt:
        if (out / CHECKPOINT).is_file():
            print(f"accel-sim: interrupted; the run directory is {out}; continue it with: "
                  f"accel-sim run --resume {out}", file=sys.stderr)
        elif out.is_dir():
            print(f"accel-sim: interrupted before the first checkpoint; {out} holds no "
                  "checkpoint to resume: run the config again", file=sys.stderr)
        raise


def _validate(args) -> int:
    """Everything that could stop a run, before it starts (validate_file)."""
    from .validate import validate_file

    lines, warnings = validate_file(args.config, args.overrides)
    for w in warnings:
        print(f"accel-sim: warning: {w}", file=sys.stderr)
    for line in lines:
        print(line)
    return 0


def _report(args) -> int:
    from .run.reprice import reprice

    dest = reprice(args.run_dir, args.energy)
    print(f"reports written to {dest}")
    summary = Path(dest) / "summary.txt"
    if summary.exists():
        text = summary.read_text(encoding="utf-8")
        start = text.find("---------- Begin Hardware")
        if start >= 0:
            print(text[start:], end="")
    return 0


def _compare(args) -> int:
    from .compare import write_compare

    dest, text = write_compare(args.run_a, args.run_b, args.out)
    sys.stdout.write(text)
    print(f"written to {dest / 'compare.md'}")
    return 0


def _on_executor(args) -> dict:
    """The executor options of sweep and search."""
    from .errors import RunError

    if args.workers is not None and args.workers < 1:
        raise RunError("--workers must be at least 1")
    return {"executor": args.executor, "workers": args.workers, "scheduler": args.scheduler,
            "progress": args.progress, "overrides": args.overrides}


def _sweep(args) -> int:
    from .sweep import run_sweep

    res = run_sweep(args.sweep, args.out, **_on_executor(args))
    print(f"sweep directory: {res.out}")
    print(f"{len(res.rows)} points: {res.count('ok')} ok, {res.count('failed')} failed, "
          f"{res.count('infeasible')} infeasible; {res.frontend_runs} frontend run(s), "
          f"{res.replays} replay(s) on {res.workers} {res.executor} worker(s) in "
          f"{res.wall_s:.1f} s")
    for r in res.rows:
        if r["status"] != "ok":
            print(f"accel-sim: point {r['index']}: {r['status']}: {r['error']}", file=sys.stderr)
    return 0


def _export(args) -> int:
    from .export import export_nir

    dest = export_nir(args.run_dir, args.out, args.format)
    print(f"written {dest}")
    return 0


def _search(args) -> int:
    from .search import run_search

    res = run_search(args.search, args.out, **_on_executor(args))
    n_ok = sum(r["feasible"] for r in res.rows)
    print(f"search directory: {res.out}")
    print(f"{len(res.rows)} candidates, {n_ok} within the budgets ({res.calibrations} "
          f"calibration run(s)), {sum(r.get('status') == 'ok' for r in res.rows)} trained")
    s = res.selected
    if s is None:
        print("no candidate was selected (none within the budgets trained)")
    else:
        print(f"selected: candidate {s['index']}: accuracy {s['accuracy']:.4f}, "
              f"{s['memory_kb']:.1f} KB, {s['infer_energy_uj']:.4g} µJ per inference")
    return 0


def _estimate(args) -> int:
    import json

    from .estimate import run_estimate

    out, source = run_estimate(args.config, args.overrides, from_run=args.from_run,
                               rates=args.rates, calibrate_samples=args.calibrate)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"estimate of {out['name']} on {out['chip']} ({out['energy_table']}), activity from "
          f"{source}; {out['seconds']['estimate'] * 1e3:.0f} ms")
    print(f"memory: {out['memory_bytes'] / 1024:.1f} KiB of weights and state; "
          f"{out['mapping']['spilled_bytes_total'] / 1024:.1f} KiB spilled to DRAM")
    print(f"{'phase':8} {'samples':>8} {'µJ/sample':>12} {'µs/sample':>12}  dominant")
    for phase, ph in out["phases"].items():
        comp = max(ph["energy_by_component_pj"].items(), key=lambda kv: kv[1])
        share = comp[1] / ph["energy_pj"] * 100 if ph["energy_pj"] else 0.0
        print(f"{phase:8} {out['activity'][phase]['samples']:>8} "
              f"{ph['energy_per_sample_pj'] * 1e-6:>12.4g} "
              f"{ph['latency_per_sample_s'] * 1e6:>12.4g}  {comp[0]} ({share:.0f} %)")
    return 0


def _show(args) -> int:
    from .config import dump_config, load_config

    sys.stdout.write(dump_config(load_config(args.config, args.overrides)))
    return 0


def _papers(args) -> int:
    from .papers import papers

    out = args.out or ("runs/papers-quick" if args.quick else "runs/papers")
    path = papers(out, quick=args.quick, only=args.only, progress=args.progress)
    print(path.read_text(), end="")
    print(f"written: {path}")
    return 0


_COMMANDS = {"run": _run, "validate": _validate, "show-config": _show, "report": _report,
             "compare": _compare, "sweep": _sweep, "estimate": _estimate, "search": _search,
             "export": _export, "papers": _papers}


def _print_error(exc: BaseException) -> None:
    problems = getattr(exc, "problems", None)
    if problems:  # one line per problem
        prefix = f"{exc.source}: " if getattr(exc, "source", None) else ""
        for line in problems:
            print(f"accel-sim: error: {prefix}{line}", file=sys.stderr)
        return
    first, *rest = str(exc).splitlines() or [type(exc).__name__]  # hints on later lines
    print(f"accel-sim: error: {first}", file=sys.stderr)
    for line in rest:
        print(f"  {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # `accel-sim ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except USER_ERRORS as exc:
        _print_error(exc)
        return 2
    except KeyboardInterrupt:
        print("accel-sim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
