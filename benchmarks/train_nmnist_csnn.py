#!/usr/bin/env python
"""Train a small convolutional SNN in snnTorch on the N-MNIST subset of ../shared/data,
export it to NIR, and record its test accuracy and spikes. Runs in a venv with torch,
snnTorch and nir (reference/peers.md), not in the project's; it reads the events with the
project's own loader (snn_frontend.spiking_data, pure NumPy), so both sides see the same
input spikes:

    ACCEL_SIM_DATA=../shared/data PEERVENV/bin/python benchmarks/train_nmnist_csnn.py OUT_DIR

Writes OUT_DIR/nmnist_csnn.nir and OUT_DIR/nmnist_csnn.json (the accuracy snnTorch itself
reaches on the 100 test samples, its spikes per sample, the settings). The network:
input (1, 34, 34) (both polarities on one map, as the loader gives them) -> Conv2d 1->8,
5x5, stride 2 -> Leaky -> Conv2d 8->16, 3x3, stride 2 -> Leaky -> Flatten -> Linear
784->10 -> Leaky; 300 ms at 5 ms steps; trained with a surrogate gradient on the spike
count (snnTorch's ce_rate_loss), Adam. configs/nir_nmnist_csnn.yaml runs the export.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from snn_frontend.spiking_data import load_nmnist  # noqa: E402

DT_MS, STEPS, EPOCHS, BATCH, SEED = 5.0, 60, 12, 50, 0


def rasters(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    s = load_nmnist(None, split, STEPS, DT_MS)
    x = np.zeros((len(s), STEPS, 34 * 34), np.float32)
    for i in range(len(s)):
        a, b = s.offsets[i], s.offsets[i + 1]
        x[i, s.times[a:b], s.units[a:b]] = 1.0
    return torch.from_numpy(x).reshape(len(s), STEPS, 1, 34, 34), torch.from_numpy(s.labels)


def network():
    import snntorch as snn
    from snntorch import surrogate

    grad = surrogate.fast_sigmoid(slope=25)

    def leaky(shape, beta):  # per-neuron tensors: snnTorch's NIR export needs them
        return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape),
                         spike_grad=grad, init_hidden=True)

    out = leaky((10,), 0.9)
    out.output = True
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 5, stride=2), leaky((8, 15, 15), 0.9),
        torch.nn.Conv2d(8, 16, 3, stride=2), leaky((16, 7, 7), 0.9),
        torch.nn.Flatten(-3), torch.nn.Linear(16 * 7 * 7, 10), out)


def run(net, x: torch.Tensor) -> torch.Tensor:
    """Output spikes (steps, batch, 10)."""
    from snntorch import utils

    utils.reset(net)
    return torch.stack([net(x[:, t])[0] for t in range(x.shape[1])])


def main() -> None:
    import nir
    from snntorch import functional as SF
    from snntorch.export_nir import export_to_nir

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    xtr, ytr = rasters("train")
    xte, yte = rasters("test")
    net = network()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = SF.ce_rate_loss()
    t0 = time.perf_counter()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(xtr))
        for k in range(0, len(xtr), BATCH):
            idx = order[k:k + BATCH]
            loss = loss_fn(run(net, xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (run(net, xte).sum(0).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {acc:.3f}",
              file=sys.stderr)
    with torch.no_grad():
        counts = run(net, xte).sum(0)
    pred = counts.argmax(1)
    nir.write(str(out / "nmnist_csnn.nir"), export_to_nir(net, xte[0, 0]))
    (out / "nmnist_csnn.json").write_text(json.dumps({
        "framework": "snntorch", "dt_ms": DT_MS, "steps": STEPS, "epochs": EPOCHS,
        "train_samples": len(xtr), "test_samples": len(xte),
        "test_accuracy": float((pred == yte).float().mean()),
        "predictions": pred.tolist(), "train_s": time.perf_counter() - t0}, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
