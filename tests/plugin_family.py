"""A network family written outside the package, as a user would: Poisson-coded digits ->
one layer of LIF neurons through a fixed random weight matrix (no learning), run for
inference. Importing this module registers it (`network.model: poisson_lif`); the tests
in test_families.py run it through every command without touching the package.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from accel_sim import NetworkFamily, register_family
from accel_sim.config.base import NetworkBase, Pos
from accel_sim.run import SpikeCounts
from snn_frontend.datasets import load_dataset, select
from snn_frontend.spec import NetworkSpec, Population, Projection


class PoissonLifNetwork(NetworkBase):
    model: Literal["poisson_lif"] = "poisson_lif"
    n_neurons: Annotated[int, Field(gt=0)] = 24
    rate_hz: Pos = 200.0  # a pixel of 16 (the digits' maximum) fires at this rate
    tau_ms: Pos = 10.0
    weight_scale: Pos = 0.4  # weights uniform in [0, weight_scale)


@dataclass
class Images:
    images: np.ndarray  # (samples, pixels) 0..16
    labels: np.ndarray


@dataclass
class Layer:
    weights: np.ndarray  # (pixels, neurons) float32
    beta: float
    backend: str = "numpy"


def present(layer: Layer, image: np.ndarray, steps: int, p_spike: float, seed: int,
            sample: int) -> tuple[np.ndarray, np.ndarray]:
    """(input raster, output raster), both (steps, n) bool: Poisson input spikes from a
    counter-based RNG keyed by (seed, sample), v = beta v + W^T x, a spike at v >= 1
    resets v to 0."""
    rng = np.random.default_rng([seed, sample])
    x = rng.random((steps, image.size)) < image / 16.0 * p_spike
    v = np.zeros(layer.weights.shape[1], np.float32)
    out = np.zeros((steps, v.size), bool)
    for t in range(steps):
        v = np.float32(layer.beta) * v + x[t].astype(np.float32) @ layer.weights
        out[t] = v >= 1.0
        v[out[t]] = 0.0
    return x, out


class PoissonLifFamily(NetworkFamily):
    name = "poisson_lif"
    models = ("poisson_lif",)
    network_config = PoissonLifNetwork
    size_keys = ("network.n_neurons",)

    def defaults(self, model):
        return {"encoding": {"present_ms": 20.0, "rest_ms": 0.0, "dt_ms": 1.0},
                "run": {"phases": ["infer"]}}

    def check(self, cfg):
        out = []
        if cfg.data.dataset != "digits":
            out.append("data.dataset: poisson_lif reads the digits")
        if list(cfg.run.phases) != ["infer"]:
            out.append("run.phases: poisson_lif only infers; use [infer]")
        return out

    def neurons(self, cfg):
        return cfg.network.n_neurons

    def load_data(self, cfg):
        ds = select(load_dataset("digits", "test", cfg.data.root), n=cfg.data.test_samples)
        return Images(ds.images.reshape(len(ds.images), -1), ds.labels)

    def build(self, cfg, data):
        rng = np.random.default_rng(cfg.seed)
        n_in = data.images.shape[1]
        w = rng.random((n_in, cfg.network.n_neurons)) * cfg.network.weight_scale
        return Layer(w.astype(np.float32),
                     float(np.exp(-cfg.encoding.dt_ms / cfg.network.tau_ms)))

    def spec(self, cfg, net):
        n_in, n = net.weights.shape
        return NetworkSpec((Population("input", n_in, "input", state_vars=()),
                            Population("lif", n, "lif", state_vars=("v",))),
                           (Projection("input", "lif", "dense", 32),), {"model": "poisson_lif"})

    def samples(self, cfg, data):
        return {"infer": len(data.images)}

    def run(self, run):
        cfg, data = run.cfg, run.data
        steps = round(cfg.encoding.present_ms / cfg.encoding.dt_ms)
        p = cfg.network.rate_hz * cfg.encoding.dt_ms * 1e-3
        n = len(data.images)
        with run.phase("infer", learn=False) as ph:
            for k in range(run.position, n):
                x, out = present(run.net, data.images[k], steps, p, cfg.seed, k)
                ph.counts.add(1, steps, {"input": x.sum(), "lif": out.sum()})
                if ph.trace is not None:
                    streams = {"input": x, "lif": out}
                    ph.trace.add(k, 0, False, steps,
                                 {s: r.sum(axis=1) for s, r in streams.items()},
                                 {s: np.nonzero(r)[1] for s, r in streams.items()})
                if run.checkpoint_due(k + 1, n):
                    run.checkpoint(k + 1)
        return {}

    def new_counts(self, phase, spec):
        return SpikeCounts(spec.names)


register_family(PoissonLifFamily())
