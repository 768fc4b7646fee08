#!/usr/bin/env python
"""What DRAM row buffers do to D&C inference with spilled weights (hardware.dram).

    python benchmarks/dram_rows.py --model RUN/model.npz --samples 100 --chip spill --json

Replays the same D&C MNIST inference samples on a chip whose SRAM cannot hold the
weights (default `spill`: ~93 % of N=400's weights in DRAM) with each DRAM kind that has
a preset (LPDDR4, DDR4, HBM2) under the open- and the closed-page policy, prices them
with the energy table, and prints per setting the row activations, row hits and hit
rate, the DRAM's dynamic energy (bursts, activations, precharges) and the total per
inference, and the latency per inference. Closed page is the old model's "every access
stream opens its rows".
"""
from __future__ import annotations

import argparse
import json

from dc_trace import dc_network, inference_trace

from accel_sim import load_energy_table, price
from accel_sim.chip import Chip
from accel_sim.config import load_config

KINDS = ("lpddr4", "ddr4", "hbm2")
PAGES = ("open", "closed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model.npz of a finished run (default: untrained)")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--chip", default="spill")
    ap.add_argument("--energy", default="generic_45nm")
    ap.add_argument("--fidelity", default="timestep")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    base = ["data.dataset=mnist", f"network.n_excitatory={a.neurons}", f"hardware={a.chip}",
            f"energy={a.energy}", "run.phases=[infer]"]
    cfg = load_config(None, base)
    table = load_energy_table(a.energy)
    trace, counts, _ = inference_trace(dc_network(cfg, a.model), a.samples)
    n = a.samples
    res = {"benchmark": "dram_rows", "chip": a.chip, "energy_table": a.energy, "samples": n,
           "fidelity": a.fidelity, "input_spikes_per_sample": counts.input_spikes / n,
           "exc_spikes_per_sample": counts.exc_spikes / n, "settings": {}}
    for kind in KINDS:
        for page in PAGES:
            hw = load_config(None, base + [f"hardware.dram.kind={kind}",
                                           f"hardware.dram.page_policy={page}"]).hardware
            r = Chip(hw, trace.spec, a.fidelity).replay(trace, "infer")
            cost = price(r, table, hw)
            c = r.counts
            acts, hits = c.get("dram.activate", 0), c.get("dram.row_hit", 0)
            res["settings"][f"{kind}/{page}"] = {
                "activations_per_inference": acts / n,
                "row_hits_per_inference": hits / n,
                "hit_rate": hits / (hits + acts) if hits + acts else 0.0,
                "dram_read_kib_per_inference": c.get("dram.read_bit", 0) / 8 / 1024 / n,
                "dram_dynamic_uj": cost.energy_pj.dynamic_by_component["dram"] / n / 1e6,
                "energy_per_inference_uj": cost.energy_pj.total / n / 1e6,
                "latency_per_inference_us": r.cycles / n / hw.clock_mhz,
            }
    print(json.dumps(res, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
