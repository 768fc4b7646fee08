#!/usr/bin/env python
"""Small convolutional SNNs built in snnTorch, Norse and Sinabs, exported to NIR, with the
spikes each framework itself produces at every spiking layer on fixed input spikes. Runs
in a venv with torch, snnTorch, Norse, Sinabs and nir (reference/peers.md), not in the
project's:

    PEERVENV/bin/python benchmarks/nir_conv_frameworks.py OUT_DIR

For each framework OUT_DIR/<framework>_conv.nir holds the network,
OUT_DIR/<framework>_conv_input.npy the input spikes (bool samples x steps x (2*12*12),
channel-major) and OUT_DIR/<framework>_conv_spikes_<node>.npy the framework's own spikes
of each spiking layer (bool samples x steps x neurons, flattened channel-major). The
networks (each as far as its exporter goes): input (2, 12, 12) -> Conv2d 2->4, 3x3,
padding 1 -> spiking -> pool 2x2 -> Flatten -> Linear 144->4 -> spiking (snnTorch: avg
pool; Sinabs: sum pool; Norse: two stride-2 convs instead). tests/test_nir.py holds our
import to their spikes.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

C, H, W, STEPS, SAMPLES, N_OUT = 2, 12, 12, 25, 6, 4


def inputs(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(SAMPLES, STEPS, C, H, W, generator=g) < 0.15).float()


def scale_up(net, factor: float) -> None:
    """Weights scaled so that every layer fires on these sparse inputs."""
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                layer.weight.mul_(factor)


def save(out: Path, name: str, graph, x: torch.Tensor, rec: dict) -> None:
    import nir

    nir.write(str(out / f"{name}_conv.nir"), graph)
    np.save(out / f"{name}_conv_input.npy", x.reshape(SAMPLES, STEPS, -1).numpy().astype(bool))
    for k, v in rec.items():
        np.save(out / f"{name}_conv_spikes_{k}.npy",
                torch.stack(v, 1).reshape(SAMPLES, STEPS, -1).numpy().astype(bool))


def snntorch_net(out: Path) -> None:
    """snnTorch: Leaky (reset by subtraction at the next step), AvgPool2d. Its exporter
    needs per-neuron beta and threshold tensors (a scalar gives a type-inference error)."""
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(C, 4, 3, padding=1),
        snn.Leaky(beta=torch.full((4, H, W), 0.9), threshold=torch.ones(4, H, W),
                  init_hidden=True),
        # tuples: its export needs them; Flatten(-3): it traces an input without a batch
        torch.nn.AvgPool2d((2, 2), (2, 2)), torch.nn.Flatten(-3),
        torch.nn.Linear(4 * (H // 2) * (W // 2), N_OUT),
        snn.Leaky(beta=torch.full((N_OUT,), 0.8), threshold=torch.ones(N_OUT), init_hidden=True,
                  output=True))
    scale_up(net, 3.0)
    x = inputs(2)
    rec = {"1": [], "5": []}
    snn_utils.reset(net)
    with torch.no_grad():
        for t in range(STEPS):
            h = net[1](net[0](x[:, t]))
            spk, _ = net[5](net[4](net[3](net[2](h))))
            rec["1"].append(h.clone())
            rec["5"].append(spk.clone())
    save(out, "snntorch", export_to_nir(net, x[0, 0]), x, rec)  # no batch dimension


def norse_net(out: Path) -> None:
    """Norse: LIFBoxCell (no synaptic current), reset to zero; two strided convs (its
    exporter maps neither pooling nor Flatten)."""
    import norse.torch as norse

    def box(shape, tau_ms: float):
        return norse.LIFBoxCell(norse.LIFBoxParameters(
            tau_mem_inv=torch.full(shape, 1e3 / tau_ms), v_leak=torch.zeros(shape),
            v_th=torch.full(shape, 0.1), v_reset=torch.zeros(shape)))

    torch.manual_seed(0)
    net = norse.SequentialState(
        torch.nn.Conv2d(C, 4, 3, stride=2, padding=1), box((4, H // 2, W // 2), 10.0),
        torch.nn.Conv2d(4, 4, 3, stride=2, padding=1), box((4, H // 4, W // 4), 20.0))
    scale_up(net, 2.0)
    x = inputs(3)
    rec = {"1": [], "3": []}
    with torch.no_grad():
        states = [None] * len(net)
        for t in range(STEPS):
            h = x[:, t]
            for k, layer in enumerate(net):
                if isinstance(layer, norse.LIFBoxCell):
                    h, states[k] = layer(h, states[k])
                    rec[str(k)].append(h.clone())
                else:
                    h = layer(h)
    save(out, "norse", norse.to_nir(net, x[0, 0]), x, rec)


def sinabs_net(out: Path) -> None:
    """Sinabs: IAF neurons (integrate and fire, threshold 1, reset by subtraction), one spike
    per step at most (SingleSpike; its default MultiSpike emits several, which NIR's IF
    cannot say), SumPool2d, no bias."""
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(C, 4, 3, padding=1, bias=False),
        sl.IAFSqueeze(batch_size=SAMPLES, spike_fn=SingleSpike),
        sl.SumPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(4 * (H // 2) * (W // 2), N_OUT, bias=False),
        sl.IAFSqueeze(batch_size=SAMPLES, spike_fn=SingleSpike))
    scale_up(net, 2.0)
    x = inputs(4)
    with torch.no_grad():
        sinabs.reset_states(net)
        flat = x.reshape(SAMPLES * STEPS, C, H, W)  # Squeeze layers: (batch x time, ...)
        h1 = net[1](net[0](flat))
        h5 = net[5](net[4](net[3](net[2](h1))))
    rec = {"1": list(h1.reshape(SAMPLES, STEPS, -1).unbind(1)),
           "5": list(h5.reshape(SAMPLES, STEPS, -1).unbind(1))}
    graph = sinabs.to_nir(net, torch.zeros(SAMPLES, C, H, W))
    save(out, "sinabs", graph, x, rec)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for make in (snntorch_net, norse_net, sinabs_net):
        make(out)
    print(f"written to {out}")
