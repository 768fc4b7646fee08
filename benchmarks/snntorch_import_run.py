#!/usr/bin/env python
"""Run a NIR file in snnTorch through its own `import_from_nir` (in a venv with snnTorch
1.0 and nir) on input spikes, and record every `Leaky` layer's spikes.

    PEERVENV/bin/python benchmarks/snntorch_import_run.py FILE.nir INPUT.npy OUT_PREFIX

INPUT.npy: (samples, steps, inputs) bool. Writes OUT_PREFIX_spikes_<node>.npy, (samples,
steps, neurons) bool, per LIF node, each sample run from reset state, one call per step.
Used by benchmarks/nir_snntorch_export.py; needs no part of this project.
"""
import sys

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch import utils
from snntorch.import_nir import import_from_nir


def main() -> None:
    path, inp, prefix = sys.argv[1:4]
    graph = nir.read(path)
    net = import_from_nir(graph)
    x = np.load(inp)
    leaky = {name.replace("_", ".") if name not in graph.nodes else name: m
             for name, m in net.named_modules() if isinstance(m, snn.Leaky)}
    names = [n for n in graph.nodes if isinstance(graph.nodes[n], nir.LIF)]
    mods = dict(zip(names, (m for _, m in net.named_modules() if isinstance(m, snn.Leaky))))
    assert len(mods) == len(names) == len(leaky), (names, list(leaky))
    out = {n: np.zeros((x.shape[0], x.shape[1], graph.nodes[n].tau.size), bool) for n in names}
    rec: dict[str, torch.Tensor] = {}
    for n, m in mods.items():
        m.register_forward_hook(lambda mod, args, res, n=n: rec.__setitem__(
            n, res[0] if isinstance(res, tuple) else res))
    with torch.no_grad():
        for b in range(x.shape[0]):
            utils.reset(net)
            for t in range(x.shape[1]):
                net(torch.from_numpy(x[b, t][None].astype(np.float32)))
                for n in names:
                    out[n][b, t] = rec[n][0].numpy() > 0
    for n, s in out.items():
        np.save(f"{prefix}_spikes_{n}.npy", s)
        print(n, int(s.sum()), file=sys.stderr)


if __name__ == "__main__":
    main()
