"""Run a network imported from NIR: inference on a dataset (latency-coded images or
recorded spikes) or on recorded input events, its spikes streamed into the chip, the run
directory as for every other model (behind `accel-sim run` with `network.model: nir`).

    load the test spikes -> read and fuse the NIR graph -> its spec on the chip (checked)
    -> inference in batches (accuracy where labels exist; each sample a presentation of
       the trace) -> price -> write
"""
from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snn_frontend.datasets import DatasetError, load_dataset, select
from snn_frontend.nir_model import POLICY_DEFAULTS, NirImportError, NirModel, read_nir
from snn_frontend.spec import NetworkSpec, Population, Projection
from snn_frontend.spiking_data import SpikeSet, latency_code, load_nmnist, load_shd
from snn_frontend.trace import TraceBuilder

from .config import Config
from .costing import hardware_stats, prepare_chip, state_bits
from .errors import RunError
from .memory import network_memory
from .rundir import MODEL, read_npz, run_info, save_npz, write_json, write_outputs

__all__ = ["execute", "load_events", "load_model", "nir_spec"]

_BATCH = 256


def load_model(cfg: Config) -> NirModel:
    """The config's NIR file, fused, with its discretisation policy (printed once)."""
    net = cfg.network
    dt_ms = net.dt_ms if net.dt_ms is not None else cfg.encoding.dt_ms
    policy = {k: (net.nir_integration.get(k, i), net.nir_reset.get(k, r) if r else None)
              for k, (i, r) in POLICY_DEFAULTS.items()}
    try:
        return read_nir(net.path, dt_ms * 1e-3, policy)
    except NirImportError as exc:
        raise RunError(str(exc)) from None


def describe(model: NirModel) -> str:
    kinds = sorted({p.kind for p in model.populations})
    rules = ", ".join(f"{k}: {model.policy[k][0]}" + (f", reset {model.policy[k][1]}"
                                                      if model.policy[k][1] else "")
                      for k in kinds)
    sizes = "-".join(str(x) for x in [model.inputs] + [p.size for p in model.populations])
    return f"NIR network {sizes}, dt {model.dt_s * 1e3:g} ms ({rules})"


def nir_spec(model: NirModel, weight_bits: int) -> NetworkSpec:
    """The imported network as the chip sees it: dense projections, or sparse ones (the
    non-zero weights) where those take fewer bits than the whole matrix."""
    pops = [Population("input", model.inputs, "input", state_vars=())]
    projs = []
    for p in model.populations:
        state = ("v", "i") if p.kind == "cuba_lif" else ("v",)
        pops.append(Population(p.name, p.size, "lif" if p.spiking else "readout",
                               state_vars=state))
        by_src: dict[str, np.ndarray] = {}  # the chip has one projection per source (delays
        for src, W, _ in p.incoming:       # of a source share its weights' places)
            by_src[src] = by_src[src] | (W != 0) if src in by_src else W != 0
        for src, W in by_src.items():
            nz = np.nonzero(W)
            n_src = W.shape[0]
            index_bits = int(np.ceil(np.log2(max(n_src * p.size, 2))))
            if len(nz[0]) * (weight_bits + index_bits) < W.size * weight_bits:
                projs.append(Projection(src, p.name, "sparse", weight_bits,
                                        pairs=(nz[0].astype(np.int64), nz[1].astype(np.int64))))
            else:
                projs.append(Projection(src, p.name, "dense", weight_bits))
    return NetworkSpec(tuple(pops), tuple(projs), {"model": "nir"})


def load_events(path: str | Path, n_inputs: int | None = None, dt_ms: float = 1.0
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Recorded input spikes: an .npz with `spikes` (bool samples x steps x inputs) and
    optionally `labels` (int, samples), an .npy of the spikes alone, or a NIR event-data
    file (its input node's recording: event times binned by dt_ms, or time-gridded
    spikes; no labels)."""
    p = Path(path)
    if p.suffix == ".npy":  # the spikes alone
        try:
            spikes, labels = np.load(p, allow_pickle=False), None
        except (OSError, ValueError) as exc:
            raise RunError(f"data.path {p}: not a readable .npy ({exc})") from None
    elif p.suffix != ".npz":
        spikes, labels = _nir_data(p, dt_ms), None
    else:
        z = read_npz(p, "data.path", {"spikes": None})
        spikes, labels = z["spikes"], z.get("labels")
    if spikes.ndim != 3:
        raise RunError(f"data.path {path}: `spikes` is {spikes.shape}; it must be samples x "
                       "steps x inputs")
    if n_inputs is not None and spikes.shape[2] != n_inputs:
        raise RunError(f"data.path {path}: {spikes.shape[2]} inputs, the network has {n_inputs}")
    if labels is not None and len(labels) != len(spikes):
        raise RunError(f"data.path {path}: {len(labels)} labels for {len(spikes)} samples")
    return spikes.astype(bool), None if labels is None else labels.astype(np.int64)


def _nir_data(path: Path, dt_ms: float) -> np.ndarray:
    """The input recording of a NIR event-data file, as a bool raster."""
    import nir

    if not path.is_file():
        raise RunError(f"data.path: no file {path}")
    try:
        data = nir.read_data(str(path))
    except (OSError, KeyError, ValueError) as exc:
        raise RunError(f"data.path {path}: not an .npz nor NIR event data ({exc})") from None
    node = data.nodes.get("input") or next(iter(data.nodes.values()), None)
    if node is None or not getattr(node, "observables", None):
        raise RunError(f"data.path {path}: the NIR data holds no recording of an input node")
    obs = next(iter(node.observables.values()))
    if not isinstance(obs, nir.EventData):  # time-gridded already
        return np.asarray(obs.data).astype(bool)
    # events at t fall in step floor(t / dt); times written as step x dt come back a hair
    # below the step in floating point, hence the tolerance of a millionth of a step
    dt_s = dt_ms * 1e-3
    raster = np.zeros((obs.n_samples, round(obs.t_max / dt_s), obs.n_neurons), bool)
    ok = obs.idx >= 0
    sample = np.broadcast_to(np.arange(obs.n_samples)[:, None], obs.idx.shape)[ok]
    step = np.floor(obs.time[ok] / dt_s + 1e-6).astype(np.int64)
    keep = step < raster.shape[1]
    raster[sample[keep], step[keep], obs.idx[ok][keep]] = True
    return raster


def _test_set(cfg: Config, n_inputs: int):
    """(batches of bool rasters (B, T, n), labels or None, samples)."""
    d, e = cfg.data, cfg.encoding
    if d.dataset == "events":
        spikes, labels = load_events(d.path, n_inputs, e.dt_ms)
        if d.test_samples:
            spikes = spikes[:d.test_samples]
            labels = None if labels is None else labels[:d.test_samples]
        return (lambda a, b: spikes[a:b]), labels, len(spikes)
    steps = round(e.present_ms / e.dt_ms)
    if d.dataset == "nmnist":
        data = load_nmnist(d.root, "test", steps, e.dt_ms)
    elif d.dataset == "shd":
        data = load_shd(d.root, "test", steps, e.dt_ms)
    else:
        te = select(load_dataset(d.dataset, "test", d.root), n=d.test_samples, classes=d.classes)
        data = latency_code(te.images, steps=steps, dt_ms=e.dt_ms, tau_eff_ms=e.latency_tau_ms,
                            theta=e.latency_theta, labels=te.labels)
    if d.dataset in ("nmnist", "shd") and d.test_samples:
        data = data.subset(np.arange(min(d.test_samples, len(data))))
    if data.n_inputs != n_inputs:
        raise DatasetError(f"data.dataset {d.dataset}: {data.n_inputs} inputs, the NIR "
                           f"network has {n_inputs}")
    return (lambda a, b, s=data: SpikeSet.batch(s, np.arange(a, b))), data.labels, len(data)


def _record(tb: TraceBuilder, first: int, raster: np.ndarray, spikes: dict, names) -> None:
    """Each sample of a batch as one presentation: the spikes of every population."""
    B, T, _ = raster.shape
    streams = {"input": raster, **spikes}
    for b in range(B):
        counts, indices = {}, {}
        for name in names:
            r = streams.get(name)
            if r is None:  # a non-spiking readout
                counts[name], indices[name] = np.zeros(T, np.int64), np.zeros(0, np.int64)
                continue
            t, j = np.nonzero(r[b])
            counts[name] = np.bincount(t, minlength=T).astype(np.int64)
            indices[name] = j.astype(np.int64)
        tb.add(first + b, 0, False, T, counts, indices)


def execute(cfg: Config, out: Path, show: bool, resume: bool) -> dict:
    """Inference of the imported network; returns stats."""
    if resume:
        raise RunError("an imported network's inference has no checkpoint to resume; run it again")
    started = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    model = load_model(cfg)
    print(f"accel-sim: {describe(model)}", file=sys.stderr)
    spec = nir_spec(model, cfg.network.weights.storage_bits)
    setup = prepare_chip(cfg, spec)  # an impossible chip fails here, before inference
    batch_of, labels, n = _test_set(cfg, model.inputs)
    load_s = time.perf_counter() - t0
    replay = setup.chip.phase("infer") if setup is not None else None
    save = "infer" in cfg.run.trace_phases
    tb = None
    if save or replay is not None:
        meta = {"spec": spec.to_dict(), "learn": False, "dt_ms": cfg.encoding.dt_ms,
                "state_reset": True, "learning": {}, "phase": "infer", "model": "nir",
                "seed": cfg.seed}
        tb = TraceBuilder(meta, (), out_dir=out / "trace_infer" if save else None,
                          on_part=replay.consume if replay is not None else None, part_size=512)
    names = spec.names
    counts = {"samples": 0, "spikes": dict.fromkeys(names, 0), "steps": 0, "synops": 0}
    correct = 0
    t1 = time.perf_counter()
    with tqdm(total=n, desc="infer", unit="sample", disable=not show, dynamic_ncols=True) as bar:
        for a in range(0, n, _BATCH):
            raster = batch_of(a, min(a + _BATCH, n))
            spikes, last = model.forward(raster, backend=cfg.run.backend,
                                         threads=cfg.run.threads or os.cpu_count() or 1)
            counts["synops"] += model.synops
            if labels is not None:
                score = last.max(axis=1) if not model.readout.spiking else last.sum(axis=1)
                correct += int((np.argmax(score, axis=1) == labels[a:a + len(raster)]).sum())
            counts["samples"] += len(raster)
            counts["steps"] += raster.shape[0] * raster.shape[1]
            counts["spikes"]["input"] += int(raster.sum())
            for k, s in spikes.items():
                counts["spikes"][k] += int(s.sum())
            if tb is not None:
                _record(tb, a, raster, spikes, names)
            bar.update(len(raster))
    if tb is not None:
        tb.close()
    timing = {"load": load_s, "infer": time.perf_counter() - t1
              - (replay.result.wall_s if replay else 0.0)}
    accuracy = {"test": correct / n, "n_test": n} if labels is not None and n else {}
    per = max(counts["samples"], 1)
    stats = {"accuracy": accuracy,
             "frontend": {"infer": dict(counts, per_sample={
                 f"{k}_spikes": v / per for k, v in counts["spikes"].items()})},
             "memory": network_memory(spec, cfg.network.state_format.storage_bits),
             "model": {"network": "nir", "path": str(cfg.network.path),
                       "description": describe(model),
                       "sizes": [model.inputs] + [p.size for p in model.populations]}}
    if setup is not None:
        stats["hardware"] = hardware_stats(cfg, setup, {"infer": replay.finish().as_dict()},
                                           state_bits(cfg))
        timing["simulate"] = replay.result.wall_s
    save_npz(out / MODEL, {f"W_{p.name}_{src}": W for p in model.populations
                           for src, W, _ in p.incoming})
    info = run_info(cfg, backend=model.backend or "none", samples={"train": 0, "infer": n}, timing=timing,
                    started=started, ended=datetime.now(UTC).isoformat(), resumed=False)
    write_json(out / "stats.json", stats)
    write_json(out / "run.json", info)
    write_outputs(out, stats, info)
    return stats
