#!/usr/bin/env python
"""Our chip model next to SANA-FE 2.2 (pip `sanafe`) on the same network, spikes and placement.

    pip install "neuro-accel-sim[sanafe]"
    python benchmarks/vs_sanafe.py [--workloads ff,recurrent,two_layer,wide] [--fidelities timestep,event,simpy]

For each workload the same network (a raster of input spikes into leaky integrate-and-fire
layers with SANA-FE's `loihi_lif` dynamics) is built in SANA-FE on its Loihi architecture
(`sanafe/examples/loihi.yaml`, `detailed` timing) and in ours on chip `loihi_sanafe` priced
with `sanafe_loihi`. Our side simulates the LIF layers itself (SANA-FE's rules: leak, then
truncation to 1/64, input added, fire when v > threshold, hard reset; "updated" when
|v| > 0 before the leak or input arrived) and checks that its spikes equal SANA-FE's; the
trace carries which neurons were updated (`<layer>:active`). Prints one JSON object:
per workload SANA-FE's and our energy (total, synapse, soma, network) and latency, and
the differences. Targets: energy within 2 %, latency within 10 % of SANA-FE.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from accel_sim.machine import machine_info
from accel_sim.sanafe_parity import ours, run_sanafe, workloads


def pct(ours_value: float, theirs: float) -> float | None:
    return None if not theirs else 100.0 * (ours_value - theirs) / theirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="ff,recurrent,two_layer,wide")
    ap.add_argument("--fidelities", default="timestep,event,simpy")
    ap.add_argument("--json", action="store_true", help="one line of JSON")
    a = ap.parse_args()
    import sanafe

    fids = a.fidelities.split(",")
    report = {"benchmark": "vs_sanafe", "sanafe": getattr(sanafe, "__version__", "2.2"),
              "chip": "loihi_sanafe", "energy_table": "sanafe_loihi",
              "machine": machine_info(), "workloads": {}}
    all_wl = workloads()
    for name in a.workloads.split(","):
        wl = all_wl[name]
        theirs = run_sanafe(wl)
        mine = ours(wl, fids)
        same = all(np.array_equal(theirs["spikes"][n], mine["spikes"][n]) for n in theirs["spikes"])
        row = {"steps": int(wl["raster"].shape[0]), "spikes_equal": bool(same),
               "spikes": {n: int(s.sum()) for n, s in mine["spikes"].items()},
               "sanafe": {k: v for k, v in theirs.items() if k != "spikes"}}
        for fid in fids:
            m = mine[fid]
            row[fid] = dict(m, diff_pct={
                **{f"energy_{k}": pct(m["energy_pj"][k], theirs["energy_pj"][k])
                   for k in ("total", "synapse", "soma", "network")},
                "latency": pct(m["latency_s"], theirs["latency_s"]),
                "messages": pct(m["messages"], theirs["messages"])})
        report["workloads"][name] = row
    print(json.dumps(report, indent=None if a.json else 2, default=float))


if __name__ == "__main__":
    main()
