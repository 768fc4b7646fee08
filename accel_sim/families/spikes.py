"""Input spikes for the families that read spikes (the surrogate network, an imported
network): latency-coded images or recorded event datasets, split and limited as `data`
says."""
from __future__ import annotations

import numpy as np

from snn_frontend.datasets import load_dataset, select, split_validation
from snn_frontend.spiking_data import SpikeSet, latency_code, load_nmnist, load_shd

__all__ = ["spike_sets", "RECORDED"]

#: datasets of recorded spikes (the rest are images, latency-coded)
RECORDED = {"nmnist": load_nmnist, "shd": load_shd}


def spike_sets(cfg, splits: tuple[str, ...] = ("train", "test")) -> dict[str, SpikeSet]:
    """The requested splits ("train", "test") as spikes of `encoding.present_ms` /
    `encoding.dt_ms` steps. With `data.evaluate_on: validation` the test split is the last
    `validation_samples` of the training split, which training then never sees."""
    d, e = cfg.data, cfg.encoding
    steps = round(e.present_ms / e.dt_ms)
    limit = {"train": d.train_samples, "test": d.test_samples}
    if d.dataset in RECORDED:
        sets = _recorded(cfg, splits, steps)
        return {s: _first(x, limit[s], d.classes) for s, x in sets.items()}
    if d.evaluate_on == "validation":
        tr, te = split_validation(load_dataset(d.dataset, "train", d.root), d.validation_samples)
        images = {"train": tr, "test": te}
    else:
        images = {s: load_dataset(d.dataset, s, d.root) for s in splits}
    code = {"steps": steps, "dt_ms": e.dt_ms, "tau_eff_ms": e.latency_tau_ms,
            "theta": e.latency_theta}
    out = {}
    for s in splits:
        ds = select(images[s], n=limit[s], classes=d.classes)
        out[s] = latency_code(ds.images, labels=ds.labels, **code)
    return out


def _recorded(cfg, splits, steps: int) -> dict[str, SpikeSet]:
    d, dt_ms = cfg.data, cfg.encoding.dt_ms
    load = RECORDED[d.dataset]
    if d.evaluate_on != "validation":
        return {s: load(d.root, s, steps, dt_ms) for s in splits}
    full = load(d.root, "train", steps, dt_ms)  # the last samples of the training split
    n = min(d.validation_samples, len(full) - 1)
    parts = {"train": full.subset(np.arange(len(full) - n)),
             "test": full.subset(np.arange(len(full) - n, len(full)))}
    return {s: parts[s] for s in splits}


def _first(s: SpikeSet, n: int | None, classes) -> SpikeSet:
    keep = np.arange(len(s)) if classes is None else np.flatnonzero(np.isin(s.labels, classes))
    return s.subset(keep[:n] if n is not None else keep)
