#!/usr/bin/env python
"""Where the energy of D&C inference goes with each SRAM power policy (hardware.power.sram).

    python benchmarks/sram_power.py --model RUN/model.npz --samples 200 --chip edge --json

Replays the same D&C MNIST inference samples on the chip with `always_on`, `gate_unused`
and `retention_when_idle` (a bank drops to retention after `--after-cycles` idle cycles,
default: its break-even stretch from the energy table; `--wake-cycles` to wake it), prices
them with the energy table, and prints per policy the energy per inference, its static
share, the SRAM's static energy, the latency per inference, the bank states (wake-ups,
bank-cycles in retention and off) and the closed-form estimate of the same (`accel-sim
estimate`'s formulas on the trace's activity).
"""
from __future__ import annotations

import argparse
import json
import math

from dc_trace import dc_network, inference_trace

from accel_sim import load_energy_table, price
from accel_sim.chip import Chip
from accel_sim.config import load_config
from accel_sim.costing import price_results
from accel_sim.energy import EnergyTable
from accel_sim.estimate import activity_from_traces, estimate_phase

POLICIES = ("always_on", "gate_unused", "retention_when_idle")


def break_even_cycles(hw, table) -> int:
    """Idle cycles after which a bank's retention saves what its wake-up costs."""
    t = EnergyTable(table).resolve(hw)
    saved_pj = t.saved_pj_per_cycle("sram.retention_bank_cycles", hw.clock_mhz)
    return math.ceil(t.pj["sram", "wake"] / saved_pj) if saved_pj else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model.npz of a finished run (default: untrained)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--chip", default="edge")
    ap.add_argument("--energy", default="generic_45nm")
    ap.add_argument("--fidelity", default="timestep")
    ap.add_argument("--after-cycles", type=int, default=None)
    ap.add_argument("--wake-cycles", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    base = ["data.dataset=mnist", f"network.n_excitatory={a.neurons}", f"hardware={a.chip}",
            f"energy={a.energy}", "run.phases=[infer]"]
    cfg = load_config(None, base)
    table = load_energy_table(a.energy)
    after = break_even_cycles(cfg.hardware, table) if a.after_cycles is None else a.after_cycles
    trace, counts, _ = inference_trace(dc_network(cfg, a.model), a.samples)
    act = activity_from_traces([trace])
    res = {"benchmark": "sram_power", "chip": a.chip, "energy_table": a.energy,
           "samples": a.samples, "fidelity": a.fidelity,
           "input_spikes_per_sample": counts.input_spikes / a.samples,
           "exc_spikes_per_sample": counts.exc_spikes / a.samples,
           "retention_after_cycles": after, "wake_cycles": a.wake_cycles, "policies": {}}
    for policy in POLICIES:
        over = [f"hardware.power.sram={policy}",
                f"hardware.power.retention_after_cycles={after}",
                f"hardware.power.wake_cycles={a.wake_cycles}"]
        hw = load_config(None, base + over).hardware
        chip = Chip(hw, trace.spec, a.fidelity)
        r = chip.replay(trace, "infer")
        cost = price(r, table, hw)
        e = cost.energy_pj
        est = estimate_phase(chip.counter, chip.rates, act)
        est_priced = price_results({"infer": est}, EnergyTable(table).resolve(hw),
                                   hw.clock_mhz)["infer"]
        res["policies"][policy] = {
            "energy_per_inference_uj": e.total / a.samples / 1e6,
            "static_share": e.static / e.total,
            "sram_static_uj": e.static_by_component["sram"] / a.samples / 1e6,
            "latency_per_inference_us": r.cycles / a.samples / hw.clock_mhz,
            "wakes_per_inference": r.counts.get("sram.wake", 0) / a.samples,
            "retention_bank_cycles_per_inference":
                r.counts.get("sram.retention_bank_cycles", 0) / a.samples,
            "off_bank_cycles_per_inference": r.counts.get("sram.off_bank_cycles", 0) / a.samples,
            "estimate_energy_per_inference_uj": est_priced["energy_per_sample_pj"] / 1e6,
            "estimate_latency_per_inference_us":
                est_priced["latency_per_sample_s"] * 1e6,
        }
    print(json.dumps(res, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
