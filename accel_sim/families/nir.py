"""Imported networks (`network.model: nir`, docs/nir.md): a NIR graph read, fused into
populations with an explicit discretisation, and run for inference on a dataset
(latency-coded images or recorded spikes) or on recorded input events; each sample is a
presentation of the trace, streamed into the chip.

Inference runs in batches; with `run.checkpoint_every` a checkpoint follows the batch
that passes each multiple of it (the samples done and the correct ones), and a resumed
run ends with the uninterrupted one's figures.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np

from snn_frontend._backend import kernels
from snn_frontend.datasets import DatasetError
from snn_frontend.nir_model import POLICY_DEFAULTS, NirImportError, NirModel, read_nir
from snn_frontend.spec import NetworkSpec, Population, Projection, index_bits
from snn_frontend.spiking_data import SpikeSet
from snn_frontend.trace import TraceBuilder, active_stream

from ..config.base import NetworkBase, Pos
from ..errors import RunError
from ..registry import register_family
from ..run.family import NetworkFamily, SpikeCounts
from ..run.rundir import read_npz
from .spikes import spike_sets

__all__ = ["NirFamily", "NirNetworkConfig", "load_events", "nir_spec", "load_model",
           "describe"]

_BATCH = 256
_IMAGES = ("digits", "mnist", "fashion_mnist")


class NirNetworkConfig(NetworkBase):
    # the file, the step its continuous-time parameters are taken at (None: encoding.dt_ms),
    # and per neuron type (lif, cuba_lif, if, li) the integration (euler | exact | sanafe:
    # SANA-FE's neuron, for lif and if) and reset (zero | subtract); unset: euler, zero
    model: Literal["nir"] = "nir"
    path: Optional[str] = None
    dt_ms: Optional[Pos] = None
    nir_integration: dict[Literal["lif", "cuba_lif", "if", "li"],
                          Literal["euler", "exact", "sanafe"]] = {}
    nir_reset: dict[Literal["lif", "cuba_lif", "if"], Literal["zero", "subtract"]] = {}


#: an imported network: inference on latency-coded images or recorded events
DEFAULTS = {"encoding": {"scheme": "latency", "present_ms": 100.0, "rest_ms": 0.0, "dt_ms": 1.0},
            "run": {"phases": ["infer"]}}


@dataclass
class TestInputs:
    """The samples to infer: `batch(a, b)` gives the bool rasters (b - a, steps, inputs)."""

    batch: Callable[[int, int], np.ndarray]
    labels: np.ndarray | None
    n: int
    n_inputs: int


# ---------------------------------------------------------------------- model
def load_model(cfg) -> NirModel:
    """The config's NIR file, fused, with its discretisation policy."""
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
    non-zero weights, each with its target's index) where those take fewer bits than the
    whole matrix; conv and pool projections with their geometry between maps; a population
    with a bias keeps it as state."""
    shape = model.input_shape if model.input_shape and len(model.input_shape) > 1 else None
    pops = [Population("input", model.inputs, "input", state_vars=(), shape=shape)]
    projs = []
    for p in model.populations:
        state = ("v", "i") if p.kind == "cuba_lif" else ("v",)
        if np.any(p.bias):
            state += ("bias",)
        pops.append(Population(p.name, p.size, "lif" if p.spiking else "readout",
                               state_vars=state, shape=p.shape))
        projs += _projections(p, weight_bits)
    return NetworkSpec(tuple(pops), tuple(projs), {"model": "nir"})


def _projections(p, weight_bits: int) -> list[Projection]:
    """The chip's projections into population p: one per source (a source's delays share
    its weights' places)."""
    dense: dict[str, np.ndarray] = {}
    out = []
    for sy in p.incoming:
        if sy.W is not None:
            dense[sy.src] = dense[sy.src] | (sy.W != 0) if sy.src in dense else sy.W != 0
        elif any(pr.src == sy.src for pr in out):
            raise RunError(f"population {p.name!r}: two conv or pool projections from "
                           f"{sy.src!r}; the chip holds one projection per source")
        else:
            out.append(Projection(sy.src, p.name, sy.connectivity,
                                  weight_bits if sy.connectivity.startswith("conv") else 0,
                                  **{k: sy.geometry[k] for k in ("kernel", "stride", "padding",
                                                                 "dilation", "groups")}))
    for src, nz_mask in dense.items():
        if any(pr.src == src for pr in out):
            raise RunError(f"population {p.name!r}: a dense and a conv projection from "
                           f"{src!r}; the chip holds one projection per source")
        nz = np.nonzero(nz_mask)
        if len(nz[0]) * (weight_bits + index_bits(p.size)) < nz_mask.size * weight_bits:
            out.append(Projection(src, p.name, "sparse", weight_bits,
                                  pairs=(nz[0].astype(np.int64), nz[1].astype(np.int64))))
        else:
            out.append(Projection(src, p.name, "dense", weight_bits))
    return out


# ---------------------------------------------------------------------- inputs
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


def test_inputs(cfg) -> TestInputs:
    """The samples to infer: recorded events, or the test split as spikes."""
    d, e = cfg.data, cfg.encoding
    if d.dataset == "events":
        spikes, labels = load_events(d.path, None, e.dt_ms)
        if d.test_samples:
            spikes = spikes[:d.test_samples]
            labels = None if labels is None else labels[:d.test_samples]
        return TestInputs(lambda a, b: spikes[a:b], labels, len(spikes), spikes.shape[2])
    data = spike_sets(cfg, ("test",))["test"]
    return TestInputs(lambda a, b, s=data: SpikeSet.batch(s, np.arange(a, b)), data.labels,
                      len(data), data.n_inputs)


@dataclass
class NirRun:
    """The imported network and the kernels it runs on."""

    model: NirModel
    backend: str


class NirCounts(SpikeCounts):
    """Spikes per population, the kernels' additions (synaptic operations) and the
    additions of non-zero weights among them (NeuroBench's effective ACs)."""

    def __init__(self, populations: tuple[str, ...]):
        super().__init__(populations)
        self.synops = 0
        self.effective_synops = 0

    def as_dict(self) -> dict:
        return dict(super().as_dict(), synops=self.synops, effective_synops=self.effective_synops)

    def load(self, d: dict) -> None:
        super().load(d)
        self.synops, self.effective_synops = d["synops"], d["effective_synops"]


# -------------------------------------------------------------------- protocol
def _record(tb: TraceBuilder, first: int, raster: np.ndarray, spikes: dict,
            active: dict) -> None:
    """Each sample of a batch as one presentation: the spikes of every population and the
    neurons SANA-FE's neuron updated (`<population>:active`)."""
    B, T, _ = raster.shape
    streams = {"input": raster, **spikes, **{active_stream(k): a for k, a in active.items()}}
    for b in range(B):
        counts, indices = {}, {}
        for name in tb.stream_names:
            r = streams.get(name)
            if r is None:  # a non-spiking readout
                counts[name], indices[name] = np.zeros(T, np.int64), np.zeros(0, np.int64)
                continue
            t, j = np.nonzero(r[b])
            counts[name] = np.bincount(t, minlength=T).astype(np.int64)
            indices[name] = j.astype(np.int64)
        tb.add(first + b, 0, False, T, counts, indices)


def _effective(model: NirModel, raster: np.ndarray, spikes: dict) -> int:
    """Additions of non-zero weights a batch made: per projection, each source neuron's
    spikes times its non-zero synapses (the spikes of the last step of a source that
    arrives a step late never arrive, as in the kernels)."""
    src_spikes = {"input": raster, **spikes}
    total = 0
    for p in model.populations:
        for sy in p.incoming:
            s = src_spikes[sy.src]
            lag = model.lag(p, sy)
            per_neuron = s[:, :s.shape[1] - lag].sum(axis=(0, 1), dtype=np.int64)
            total += int(per_neuron @ sy.nonzero_per_row())
    return total


def neurobench(run, counts: NirCounts) -> dict:
    """NeuroBench's metrics of the imported network (docs/nir.md says where its definitions
    and ours differ): footprint (float32 bytes of the weight nodes' weights and biases,
    one bias per conv output channel, and each neuron's leak and threshold, the leak alone
    for a readout), connection sparsity (zero weights over all weights),
    activation sparsity (1 - spikes over neuron-steps of the spiking populations), and per
    sample the synaptic operations: effective ACs (additions of a non-zero weight for an
    input spike; every input here is a spike, so there are no MACs) and dense operations
    (every synapse at every step)."""
    model = run.net.model
    weights = [sy.W if sy.W is not None else sy.kernel for p in model.populations
               for sy in p.incoming if sy.W is not None or sy.kernel is not None]
    n_weights = sum(w.size for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    biases = sum((p.shape[0] if p.shape else p.size) for p in model.populations if p.bias.any())
    neuron_params = sum(p.size * (2 if p.spiking else 1) for p in model.populations)
    spiking = [p for p in model.populations if p.spiking]
    neuron_steps = counts.steps * sum(p.size for p in spiking)
    fired = sum(counts.spikes[p.name] for p in spiking)
    n = max(counts.samples, 1)
    steps_per_sample = counts.steps / n
    dense = sum(sy.n_synapses for p in model.populations for sy in p.incoming) * steps_per_sample
    return {"footprint_bytes": 4 * (n_weights + biases + neuron_params),
            "connection_sparsity": zeros / n_weights if n_weights else 0.0,
            "activation_sparsity": 1.0 - fired / neuron_steps if neuron_steps else 0.0,
            "synaptic_operations": {"effective_acs": counts.effective_synops / n,
                                    "effective_macs": 0.0, "dense": dense},
            "definitions": "NeuroBench 2.3 (docs/nir.md: where ours differ)"}


def infer(run) -> dict:
    """Inference in batches, with accuracy where the samples have labels."""
    cfg, inputs, model = run.cfg, run.data, run.net.model
    print(f"accel-sim: {describe(model)}", file=sys.stderr)
    correct = int(run.extra.get("correct", 0))
    every = cfg.run.checkpoint_every
    threads = cfg.run.threads or os.cpu_count() or 1
    with run.phase("infer", learn=False) as ph, run.bar(inputs.n, "infer",
                                                         initial=run.position) as bar:
        for a in range(run.position, inputs.n, _BATCH):
            raster = inputs.batch(a, min(a + _BATCH, inputs.n))
            spikes, last = model.forward(raster, backend=cfg.run.backend, threads=threads)
            if inputs.labels is not None:
                score = last.max(axis=1) if not model.readout.spiking else last.sum(axis=1)
                correct += int((np.argmax(score, axis=1) == inputs.labels[a:a + len(raster)]).sum())
            ph.counts.add(len(raster), raster.shape[0] * raster.shape[1],
                          {"input": raster.sum(), **{k: s.sum() for k, s in spikes.items()}})
            ph.counts.synops += model.synops
            ph.counts.effective_synops += _effective(model, raster, spikes)
            if ph.trace is not None:
                _record(ph.trace, a, raster, spikes, model.active)
            bar.update(len(raster))
            done = a + len(raster)
            if every and done < inputs.n and done // every > a // every:
                run.checkpoint(done, {"correct": correct})
    n = inputs.n
    return {"test": correct / n, "n_test": n} if inputs.labels is not None and n else {}


# ---------------------------------------------------------------------- family
class NirFamily(NetworkFamily):
    name = "nir"
    models = ("nir",)
    network_config = NirNetworkConfig

    def defaults(self, model: str) -> dict:
        return DEFAULTS

    def check(self, cfg) -> list[str]:
        out = []
        if not cfg.network.path:
            out.append("network.path: network.model nir reads a NIR file; give its path")
        if list(cfg.run.phases) != ["infer"]:
            out.append("run.phases: an imported NIR network is run for inference only; use "
                       "[infer]")
        bad = sorted(k for k, v in cfg.network.nir_integration.items()
                     if v == "sanafe" and k not in ("lif", "if"))
        if bad:
            out.append(f"network.nir_integration: sanafe is SANA-FE's LIF, for lif and if "
                       f"(not {', '.join(bad)})")
        if cfg.data.dataset == "events" and not cfg.data.path:
            out.append("data.path: data.dataset events reads recorded spikes from an .npz, "
                       ".npy or NIR data file; give its path")
        if cfg.data.dataset in _IMAGES and cfg.encoding.scheme != "latency":
            out.append("encoding.scheme: an imported network reads images as a latency code "
                       "(scheme: latency) or recorded events")
        if cfg.network.state_format.kind != "float64":
            out.append("network.state_format: an imported network's state is floating point "
                       "(kind: float64)")
        return out

    def load_data(self, cfg) -> TestInputs:
        return test_inputs(cfg)

    def build(self, cfg, data: TestInputs) -> NirRun:
        model = load_model(cfg)
        if data.n_inputs != model.inputs:
            what = f"data.path {cfg.data.path}" if cfg.data.dataset == "events" \
                else f"data.dataset {cfg.data.dataset}"
            raise DatasetError(f"{what}: {data.n_inputs} inputs, the NIR network has "
                               f"{model.inputs}")
        return NirRun(model, kernels(cfg.run.backend, "nir")[0])

    def spec(self, cfg, net: NirRun) -> NetworkSpec:
        return nir_spec(net.model, cfg.network.weights.storage_bits)

    def trace_meta(self, cfg, net: NirRun, spec, *, learn: bool):
        meta, _ = super().trace_meta(cfg, net, spec, learn=learn)
        return meta, tuple(active_stream(p.name) for p in net.model.populations
                           if p.sanafe is not None)

    def describe(self, cfg, data: TestInputs, net: NirRun, spec) -> str:
        labels = "labelled" if data.labels is not None else "unlabelled"
        return f"{data.n} {labels} test samples; {describe(net.model)}"

    def samples(self, cfg, data: TestInputs) -> dict[str, int]:
        return {"train": 0, "infer": data.n}

    def run(self, run) -> dict:
        return infer(run)

    def new_counts(self, phase: str, spec: NetworkSpec) -> NirCounts:
        return NirCounts(spec.names)

    def model_arrays(self, run) -> dict[str, np.ndarray]:
        return {f"{'W' if sy.W is not None else 'K'}_{p.name}_{sy.src}":
                sy.W if sy.W is not None else sy.kernel
                for p in run.net.model.populations for sy in p.incoming
                if sy.W is not None or sy.kernel is not None}

    def to_nir(self, cfg, model: dict[str, np.ndarray], form: str = "exact"):
        """The graph the run imported (its file, read again)."""
        import nir

        if form != "exact":
            raise RunError(f"an imported network is exported as the graph it was read from; "
                           f"the {form} form is for networks trained here")
        try:
            return nir.read(cfg.network.path, type_check=False)
        except (OSError, KeyError, ValueError) as exc:
            raise RunError(f"network.path {cfg.network.path}: cannot read the imported graph "
                           f"again ({exc})") from None

    def neurobench(self, run) -> dict | None:
        return neurobench(run, run.phases["infer"].counts) if "infer" in run.phases else None

    def model_stats(self, run) -> dict:
        model = run.net.model
        return {"network": "nir", "path": str(run.cfg.network.path),
                "description": describe(model),
                "sizes": [model.inputs] + [p.size for p in model.populations]}


register_family(NirFamily())
