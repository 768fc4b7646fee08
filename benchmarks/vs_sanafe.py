#!/usr/bin/env python
"""Our chip model next to SANA-FE 2.2 (pip `sanafe`) on the same network, spikes and placement.

    pip install "neuro-accel-sim[sanafe]"
    python benchmarks/vs_sanafe.py [--workloads ff,recurrent,two_layer,wide,conv,dvs_gesture]
                                   [--fidelities timestep,event,simpy] [--dvs-steps 1000]
                                   [--timing]

For each workload (accel_sim/sanafe_parity.py) the same network is built in SANA-FE on
its Loihi architecture (`sanafe/examples/loihi.yaml`, `detailed` timing), each projection
on the synapse unit of its kind, and in ours: our frontend runs it with SANA-FE's neuron
(`snn_frontend.sanafe_lif`: leak, truncation to 1/64, bias and input added, fire when
v > threshold, reset; "updated" when |v| > 0, input arrived or a bias) and its spikes are
checked against SANA-FE's; the trace (spikes and `<layer>:active`) is replayed on chip
`loihi_sanafe` at each fidelity and priced with `sanafe_loihi`. `dvs_gesture` is SANA-FE's
own DVS-gesture network from its package (tutorial 5: 32x32 biased input layer, four conv
layers, dense readout of 11, on 42 cores), `--dvs-steps` long.

Prints one JSON object: per workload SANA-FE's and our energy (total, synapse, soma,
network), latency, messages, synaptic events and wall times (SANA-FE's simulation, our
frontend, our replay at each fidelity), and the differences. Targets: energy within 2 %,
latency within 10 % of SANA-FE; replaying dvs_gesture at `timestep` costs no more than our
frontend's time for the same steps. `--timing` also times SANA-FE's `chip.sim` without a
trace on a fresh chip and gives each replay's wall time over it (targets: `event` no
slower, `simpy` within 3x): SANA-FE's `load` (mapping the network) is outside its time,
and building our chip (mapping, routes, access tables: `build_s`) outside ours.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from accel_sim.machine import machine_info
from accel_sim.sanafe_parity import dvs_gesture, ours, run_sanafe, workloads


def pct(ours_value: float, theirs: float) -> float | None:
    return None if not theirs else 100.0 * (ours_value - theirs) / theirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="ff,recurrent,two_layer,wide,conv,dvs_gesture")
    ap.add_argument("--fidelities", default="timestep,event,simpy")
    ap.add_argument("--dvs-steps", type=int, default=1000,
                    help="steps of dvs_gesture (SANA-FE's tutorial runs 1000)")
    ap.add_argument("--timing", action="store_true",
                    help="also time SANA-FE without its spike trace and give each "
                         "fidelity's replay time over it (replay_over_sanafe)")
    ap.add_argument("--json", action="store_true", help="one line of JSON")
    a = ap.parse_args()
    import sanafe

    fids = a.fidelities.split(",")
    report = {"benchmark": "vs_sanafe", "sanafe": getattr(sanafe, "__version__", "2.2"),
              "chip": "loihi_sanafe", "energy_table": "sanafe_loihi",
              "machine": machine_info(), "workloads": {}}
    all_wl = workloads()
    for name in a.workloads.split(","):
        wl = dvs_gesture(a.dvs_steps) if name == "dvs_gesture" else all_wl[name]
        theirs = run_sanafe(wl, timing=a.timing)
        mine = ours(wl, fids)
        same = all(np.array_equal(theirs["spikes"][n], mine["spikes"][n]) for n in theirs["spikes"])
        row = {"steps": int(wl["steps"]), "spikes_equal": bool(same),
               "spikes": {n: int(s.sum()) for n, s in mine["spikes"].items()},
               "neurons": int(sum(layer.size for layer in wl["layers"])),
               "frontend_wall_s": mine["frontend_wall_s"],
               "sanafe": {k: v for k, v in theirs.items() if k != "spikes"}}
        for fid in fids:
            m = mine[fid]
            row[fid] = dict(m, diff_pct={
                **{f"energy_{k}": pct(m["energy_pj"][k], theirs["energy_pj"][k])
                   for k in ("total", "synapse", "soma", "network")},
                "latency": pct(m["latency_s"], theirs["latency_s"]),
                "messages": pct(m["messages"], theirs["messages"])},
                replay_over_frontend=m["wall_s"] / mine["frontend_wall_s"])
            if a.timing:
                row[fid]["replay_over_sanafe"] = m["wall_s"] / theirs["untraced_wall_s"]
        report["workloads"][name] = row
    print(json.dumps(report, indent=None if a.json else 2, default=float))


if __name__ == "__main__":
    main()
