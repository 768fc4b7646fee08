"""The D&C inference trace the chip benchmarks replay (chip_replay, chip_sample,
barrier_free): a network from the config, with a finished run's trained weights and
thresholds when given, run on MNIST test images with one thread."""
from __future__ import annotations

import time

import numpy as np

from snn_frontend.counts import FrontendCounts
from snn_frontend.datasets import load_dataset
from snn_frontend.network import DiehlCookNetwork
from snn_frontend.trace import SpikeTrace, TraceBuilder


def dc_network(cfg, model: str | None) -> DiehlCookNetwork:
    """D&C for MNIST from `cfg`; `model`: a run's model.npz (weights, theta and, with
    network.input_delay_max_ms, its input delays)."""
    net = DiehlCookNetwork.from_config(cfg, 784)
    if model:
        with np.load(model) as z:
            net.weights[...] = z["weights"]
            net.state.theta[:] = z["theta"]
            if net.params.delay_slots and "input_delays" in z.files:
                net.set_input_delays(z["input_delays"])
    return net


def inference_trace(net: DiehlCookNetwork, samples: int, *, warm_up: bool = False
                    ) -> tuple[SpikeTrace, FrontendCounts, float]:
    """The trace of `samples` MNIST test images, the frontend's counts and its wall
    seconds for them (after a 5-image warm-up when asked)."""
    images = load_dataset("mnist", "test").images[:samples]
    if warm_up:
        net.infer(images[:5], 0, threads=1)
    tb = TraceBuilder(net.trace_meta(net.spec(32), learn=False))
    counts = FrontendCounts()
    t0 = time.perf_counter()
    net.infer(images, 1, threads=1, counts=counts, trace=tb)
    return tb.build(), counts, time.perf_counter() - t0
