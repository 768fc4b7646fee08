"""Time snnTorch dense BPTT on the two-hidden-layer network of Perez-Nieves & Goodman.

Run with the peers venv (snnTorch 1.0, torch CPU, numpy):

    /work/peers-venv/bin/python benchmarks/snntorch_bptt2.py [--threads 2 --iters 8 ...]

Network: "Sparse Spiking Gradient Descent" (Perez-Nieves & Goodman, NeurIPS 2021),
Fashion-MNIST configuration:
  * 784 inputs -> 200 LIF -> 200 LIF -> 10 readout. T = 100 steps of dt = 1 ms, batch 256.
  * LIF layers are `snn.Leaky` with beta = exp(-dt/tau_mem) = exp(-1/10), threshold 1 and reset
    by subtraction. With snnTorch's default reset_delay=True this is
        U[t] = beta*U[t-1] + W x[t] - S[t-1],   S[t] = H(U[t] - 1).
  * The readout is `snn.Leaky(beta, reset_mechanism="none")`, a non-spiking leaky integrator
    (its spike output is ignored). Its input is scaled by (1 - beta), as in the authors' code
    (npvoid/SparseSpikingBackprop, SNNReadout: out = beta*out + (1-beta)*W3 s2[t]). Its hidden
    layers have no such factor, like snn.Leaky. --readout-scale 1 gives the unscaled readout.
    The scale changes the logits and the loss, not the cost.
  * No biases. Surrogate: snnTorch's fast sigmoid with slope 100, so
    dS/dU = 1 / (100*|U - 1| + 1)^2, the paper's surrogate.
  * Loss: log-softmax + NLL on the max over time of the readout membrane. No regulariser: the
    authors' code also adds upper/lower spike-count regularisers, which are left out here.
  * Adam, lr 2e-4.
  * Every weight matrix is drawn from N(0, sigma), sigma = 20*(1-beta)/sqrt(fan_in). This is the
    paper's Fashion-MNIST init; with it both hidden layers spike.
  * Synaptic projections are per-step `nn.Linear` calls inside the time loop. This is the way
    snnTorch's tutorials write it, and the one-layer peer (bench/peers/snntorch_bptt.py) does the same.

Input: the first --samples Fashion-MNIST training images and labels, read from the IDX .gz files
with gzip + numpy. Each image is latency-coded as in the paper and SpyTorch: x = pixel/255, and a
pixel with x > 0.2 spikes once at t = 20 ms * ln(x / (x - 0.2)), step floor(t / 1 ms). It spikes
only if that step is < T. Other pixels never spike. Training step i uses batch (i mod n_batches).

What is timed (torch.set_num_threads(--threads)), per training step on one batch:
  forward_s   network over all T steps + loss
  backward_s  loss.backward()
  adam_s      optimizer.step()
  step_s      the whole step: zero_grad + forward + backward + Adam
There are --warmup untimed steps, then --iters timed steps. We report the median and [min, max].
Building the dense input batch [T, B, 784] happens outside the timers.

We also measure, over the timed steps, for each hidden layer:
  spike_fraction   spikes / (B*T*N)
  active_fraction  fraction of (b, t, neuron) entries with |U - 1| < 0.2. This is what a sparse
                   backward in the paper's style would touch.
To keep these statistics out of the timers, the forward keeps references to the per-step spike
and membrane tensors. They are reduced after the step has been timed. This adds about
4*T*B*N*4 bytes (82 MB at the defaults) to peak RSS.
loss_first is the loss of the very first training step (the first warm-up step). loss_last is the
loss of the last timed step.

Output: a `RESULT {json}` line. With --json, that line is the only output.
"""
import argparse
import gzip
import json
import math
import os
import resource
import statistics
import time

import numpy as np
import snntorch
import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import surrogate
from torch import nn

N_IN, N_OUT = 784, 10
DT_MS, TAU_MEM_MS = 1.0, 10.0
BETA = math.exp(-DT_MS / TAU_MEM_MS)  # 0.9048374
THRESHOLD = 1.0
SURR_SLOPE = 100.0
LR = 2e-4
TAU_EFF_MS, X_THR = 20.0, 0.2  # latency code of the paper / SpyTorch
ACTIVE_BAND = 0.2  # |U - threshold| < 0.2: entries a sparse backward would touch


# ----------------------------------------------------------------------------- data

def read_idx(path, header, count, item_bytes):
    """Read the first `count` items of a gzipped IDX file (header bytes skipped)."""
    with gzip.open(path, "rb") as f:
        raw = f.read(header + count * item_bytes)
    data = np.frombuffer(raw, np.uint8, offset=header)
    if data.size != count * item_bytes:
        raise ValueError(f"{path}: only {data.size // item_bytes} items, asked for {count}")
    return data


def load_fashion_mnist(data_dir, samples):
    raw = os.path.join(data_dir, "FashionMNIST", "raw")
    imgs = read_idx(os.path.join(raw, "train-images-idx3-ubyte.gz"), 16, samples, N_IN)
    labels = read_idx(os.path.join(raw, "train-labels-idx1-ubyte.gz"), 8, samples, 1)
    return imgs.reshape(samples, N_IN), labels.astype(np.int64)


def latency_steps(imgs, steps):
    """Spike step per (sample, pixel), -1 = no spike. t = tau_eff * ln(x / (x - 0.2)) for x > 0.2."""
    x = imgs.astype(np.float64) / 255.0
    step = np.full(x.shape, -1, dtype=np.int64)
    on = x > X_THR
    t_ms = TAU_EFF_MS * np.log(x[on] / (x[on] - X_THR))
    k = np.floor(t_ms / DT_MS).astype(np.int64)
    k[k >= steps] = -1
    step[on] = k
    return step


def dense_batch(step, idx, steps):
    """[T, B, 784] float32 spike tensor for the samples `idx`."""
    s = step[idx]
    b, i = np.nonzero(s >= 0)
    x = np.zeros((steps, len(idx), N_IN), dtype=np.float32)
    x[s[b, i], b, i] = 1.0
    return torch.from_numpy(x)


# ----------------------------------------------------------------------------- network

class Net(nn.Module):
    def __init__(self, hidden, readout_scale):
        super().__init__()
        self.readout_scale = readout_scale
        sg = surrogate.fast_sigmoid(slope=SURR_SLOPE)
        self.fc1 = nn.Linear(N_IN, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, hidden, bias=False)
        self.fc3 = nn.Linear(hidden, N_OUT, bias=False)
        self.lif1 = snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=sg, reset_mechanism="subtract")
        self.lif2 = snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=sg, reset_mechanism="subtract")
        self.out = snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=sg, reset_mechanism="none")
        with torch.no_grad():
            for fc in (self.fc1, self.fc2, self.fc3):
                fc.weight.normal_(0.0, 20.0 * (1.0 - BETA) / math.sqrt(fc.in_features))
        self.rec = None

    def forward(self, x):  # x: [T, B, 784]
        m1, m2, m3 = self.lif1.reset_mem(), self.lif2.reset_mem(), self.out.reset_mem()
        out_rec = []
        rec = {"s1": [], "u1": [], "s2": [], "u2": []}
        for t in range(x.shape[0]):
            s1, m1 = self.lif1(self.fc1(x[t]), m1)
            s2, m2 = self.lif2(self.fc2(s1), m2)
            _, m3 = self.out(self.readout_scale * self.fc3(s2), m3)
            out_rec.append(m3)
            # references only; reduced outside the timers
            rec["s1"].append(s1); rec["u1"].append(m1); rec["s2"].append(s2); rec["u2"].append(m2)
        self.rec = rec
        return torch.stack(out_rec)  # [T, B, 10]


def loss_fn(out, y):
    """log-softmax + NLL on the max over time of the readout membrane."""
    return F.nll_loss(F.log_softmax(out.max(dim=0).values, dim=1), y)


def hidden_stats(rec):
    """(spike fraction, active fraction) for both hidden layers of one step."""
    with torch.no_grad():
        sf, af = [], []
        for s_key, u_key in (("s1", "u1"), ("s2", "u2")):
            s = torch.stack([v.detach() for v in rec[s_key]])
            u = torch.stack([v.detach() for v in rec[u_key]])
            sf.append(float(s.mean()))
            af.append(float(((u - THRESHOLD).abs() < ACTIVE_BAND).float().mean()))
    return sf, af


# ----------------------------------------------------------------------------- main

def med(v):
    return statistics.median(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100, help="time steps T (dt = 1 ms)")
    ap.add_argument("--hidden", type=int, default=200, help="neurons in each of the 2 hidden layers")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=8, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    ap.add_argument("--samples", type=int, default=2560, help="first N Fashion-MNIST training images")
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--readout-scale", type=float, default=1.0 - BETA,
                    help="gain on the readout input; default 1-beta as in the authors' code")
    ap.add_argument("--json", action="store_true", help="print only the RESULT line")
    a = ap.parse_args()
    if a.samples < a.batch:
        ap.error("--samples must be >= --batch")

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    say = (lambda *m: None) if a.json else (lambda *m: print(*m, flush=True))

    imgs, labels = load_fashion_mnist(a.data, a.samples)
    spike_step = latency_steps(imgs, a.steps)
    n_batches = a.samples // a.batch
    say(f"{a.samples} images, {n_batches} batches, "
        f"{(spike_step >= 0).sum() / a.samples:.1f} input spikes/sample")

    net = Net(a.hidden, a.readout_scale)
    opt = torch.optim.Adam(net.parameters(), lr=LR)

    fwd, bwd, adam, whole, sf1, sf2, af1, af2 = ([] for _ in range(8))
    loss_first = loss_last = None
    for it in range(a.warmup + a.iters):
        idx = np.arange(a.batch) + (it % n_batches) * a.batch
        x = dense_batch(spike_step, idx, a.steps)
        y = torch.from_numpy(labels[idx])

        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        out = net(x)
        loss = loss_fn(out, y)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()

        lv = float(loss.detach())
        if loss_first is None:
            loss_first = lv
        timed = it >= a.warmup
        if timed:
            fwd.append(t2 - t1); bwd.append(t3 - t2); adam.append(t4 - t3); whole.append(t4 - t0)
            (s1, s2), (u1, u2) = hidden_stats(net.rec)
            sf1.append(s1); sf2.append(s2); af1.append(u1); af2.append(u2)
            loss_last = lv
        net.rec = None
        del out, loss
        say(f"step {it}{'' if timed else ' (warm-up)'}: fwd {t2 - t1:.3f} s, bwd {t3 - t2:.3f} s, "
            f"adam {1e3 * (t4 - t3):.2f} ms, step {t4 - t0:.3f} s, loss {lv:.4f}")

    r = {
        "peer": "snntorch",
        "version": snntorch.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": a.batch,
        "steps": a.steps,
        "hidden": [a.hidden, a.hidden],
        "iters": a.iters,
        "warmup": a.warmup,
        "samples": a.samples,
        "readout_scale": a.readout_scale,
        "forward_s": med(fwd),
        "backward_s": med(bwd),
        "adam_s": med(adam),
        "step_s": med(whole),
        "forward_s_min_max": [min(fwd), max(fwd)],
        "backward_s_min_max": [min(bwd), max(bwd)],
        "adam_s_min_max": [min(adam), max(adam)],
        "step_s_min_max": [min(whole), max(whole)],
        "spike_fraction": [statistics.fmean(sf1), statistics.fmean(sf2)],
        "active_fraction": [statistics.fmean(af1), statistics.fmean(af2)],
        "input_spikes_per_sample": float((spike_step >= 0).sum() / a.samples),
        "loss_first": loss_first,
        "loss_last": loss_last,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    print("RESULT " + json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
