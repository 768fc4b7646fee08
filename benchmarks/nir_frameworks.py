#!/usr/bin/env python
"""Build, train briefly and export small networks from snnTorch and Norse to NIR, and
record the spikes each framework itself produces on fixed input spikes. Runs in a venv
with torch, snnTorch, Norse and nir (reference/peers.md), not in the project's:

    PEERVENV/bin/python benchmarks/nir_frameworks.py OUT_DIR

For each framework OUT_DIR/<framework>.nir holds the network,
OUT_DIR/<framework>_input.npy the input spikes (bool samples x steps x inputs) and
OUT_DIR/<framework>_spikes_<layer node>.npy the framework's own spikes of each layer
(bool samples x steps x neurons).
benchmarks/nir_interop.py compares them with this project's import.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

N_IN, N_HID, N_OUT, STEPS, SAMPLES = 20, 16, 4, 30, 8


def inputs(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(SAMPLES, STEPS, N_IN, generator=g) < 0.2).float()


def train_briefly(model, step, x: torch.Tensor, steps: int = 20) -> None:
    """Weights scaled up so that every layer fires, then a few Adam steps towards class =
    sample index mod N_OUT (the weights leave the initialisation)."""
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(4.0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-2)
    target = torch.arange(len(x)) % N_OUT
    for _ in range(steps):
        out = step(x)  # (samples, steps, N_OUT) spikes
        loss = torch.nn.functional.cross_entropy(out.sum(1), target)
        opt.zero_grad()
        loss.backward()
        opt.step()


def finish(out: Path, name: str, net, run, to_nir) -> None:
    """Train briefly, record the spikes of layers 1 and 3 on fixed inputs, export to NIR."""
    import nir

    train_briefly(net, run, inputs(1))
    x = inputs(2)
    rec = {"1": [], "3": []}
    with torch.no_grad():
        run(x, rec)
    nir.write(str(out / f"{name}.nir"), to_nir(net, x[0, 0]))
    np.save(out / f"{name}_input.npy", x.numpy().astype(bool))
    for k, v in rec.items():
        np.save(out / f"{name}_spikes_{k}.npy", torch.stack(v, 1).numpy().astype(bool))


def snntorch_net(out: Path) -> None:
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(N_IN, N_HID),
        snn.Leaky(beta=torch.full((N_HID,), 0.9), threshold=torch.ones(N_HID), init_hidden=True),
        torch.nn.Linear(N_HID, N_OUT),
        snn.Leaky(beta=torch.full((N_OUT,), 0.8), threshold=torch.ones(N_OUT), init_hidden=True,
                  output=True))

    def run(x, record=None):
        snn_utils.reset(net)
        outs = []
        for t in range(x.shape[1]):
            h = net[1](net[0](x[:, t]))
            spk, _ = net[3](net[2](h))
            if record is not None:
                record["1"].append(h.detach().clone())
                record["3"].append(spk.detach().clone())
            outs.append(spk)
        return torch.stack(outs, 1)

    finish(out, "snntorch", net, run, export_to_nir)


def norse_net(out: Path) -> None:
    import norse.torch as norse

    def box(n: int, tau_ms: float):  # per-neuron parameters (NIR writes arrays)
        return norse.LIFBoxCell(norse.LIFBoxParameters(
            tau_mem_inv=torch.full((n,), 1e3 / tau_ms), v_leak=torch.zeros(n),
            v_th=torch.full((n,), 0.1), v_reset=torch.zeros(n)))

    torch.manual_seed(0)
    net = norse.SequentialState(
        torch.nn.Linear(N_IN, N_HID), box(N_HID, 10.0),
        torch.nn.Linear(N_HID, N_OUT), box(N_OUT, 20.0))

    def run(x, record=None):
        state, outs = None, []
        for t in range(x.shape[1]):
            h = x[:, t]
            states = list(state) if state is not None else [None] * 4
            for k, layer in enumerate(net):
                if isinstance(layer, torch.nn.Linear):
                    h = layer(h)
                else:
                    h, states[k] = layer(h, states[k])
                    if record is not None:
                        record[str(k)].append(h.detach().clone())
            state = states
            outs.append(h)
        return torch.stack(outs, 1)

    finish(out, "norse", net, run, norse.to_nir)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    snntorch_net(out)
    norse_net(out)
    print(f"written to {out}")
