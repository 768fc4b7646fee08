"""`accel-sim estimate`: closed-form counts, memory, energy and latency per phase from the
network spec, the chip and firing rates, without replaying spikes (docs/analytical.md).

Activity (`PhaseActivity`) is a handful of numbers per phase: samples, presentations and
steps per presentation, and the mean events per step of every trace stream (the spikes of
each population and the learning events). It is given (a JSON file) or measured by a
short calibration run of the frontend. The chip enters through the same mapping, access
tables and routes the simulator uses (its structure, computed once): each count is a
rate times a sum over that structure. Spikes are taken as uniform over a population's
neurons and Poisson over steps; the step time is the `timestep` fidelity's formula
averaged over the Poisson distribution of spikes per step.
"""
from __future__ import annotations

from dataclasses import asdict

from snn_frontend.spec import NetworkSpec

from ..chip.counting import ChipCounter
from ..chip.mapping import Mapping as ChipMapping
from ..chip.mapping import load_placement
from ..chip.power import SramPower
from ..chip.timing import HwRates
from ..chip.topology import Topology
from ..costing import price_results, resolve_table, state_bits
from ..errors import RunError
from ..memory import network_memory
from .activity import (
    PhaseActivity,
    activities_from_dict,
    activity_from_traces,
    activity_of_run,
    calibrate,
)
from .bptt import backward, backward_cycles
from .forward import counts, passes_cycles, step_cycles
from .power import expected_bank_states

__all__ = [
    "run_estimate",
    "PhaseActivity",
    "activities_from_dict",
    "activity_from_traces",
    "activity_of_run",
    "calibrate",
    "estimate",
    "estimate_phase",
]


def estimate_phase(counter: ChipCounter, rates_hw: HwRates, act: PhaseActivity) -> dict:
    """{counts, cycles, samples, presentations, time_steps} of a phase (what pricing takes)."""
    pres = act.presentations * act.samples
    expected = counts(counter, act)
    step = step_cycles(counter, rates_hw, act)
    cycles = act.steps * step + passes_cycles(counter, rates_hw, act)
    if act.learn and counter.backprop is not None:
        cycles += backward_cycles(backward(counter, act, expected), rates_hw)
    per = {f"{k}.{a}": v for (k, a), v in expected.items()}
    power = SramPower.of(counter.hw, counter.m)
    if power is not None:  # SRAM banks off, or in retention over idle stretches
        states, extra = expected_bank_states(power, act, step)
        cycles += extra
        per.update(states)
        per["sram.off_bank_cycles"] = float(power.off.sum()) * cycles
    cycles *= pres
    return {"counts": {k: v * pres for k, v in sorted(per.items()) if v},
            "cycles": cycles, "samples": act.samples, "presentations": pres,
            "time_steps": pres * act.steps}


def estimate(cfg, spec: NetworkSpec, activity: dict[str, PhaseActivity]) -> dict:
    """The estimate of every phase with activity: the stats.json-like dict `accel-sim
    estimate --json` prints."""
    if cfg.hardware is None:
        raise RunError("estimate needs a chip: add hardware and energy to the config")
    hw = cfg.hardware
    placement = load_placement(hw.placement_file) if hw.placement_file else None
    mapping = ChipMapping(spec, hw, placement)
    topology = Topology(hw)
    counter = ChipCounter(mapping, topology)
    rates_hw = HwRates(hw, mapping, topology)
    table, warnings = resolve_table(cfg)
    results = {phase: estimate_phase(counter, rates_hw, act) for phase, act in activity.items()}
    priced = price_results(results, table, hw.clock_mhz)
    return {
        "chip": hw.name, "energy_table": table.name, "clock_mhz": hw.clock_mhz,
        "warnings": warnings,
        "memory_bytes": network_memory(spec, state_bits(cfg))["total_bytes"],
        "mapping": mapping.report(state_bits(cfg), hw.formats.trace_bits),
        "activity": {p: asdict(a) for p, a in activity.items()},
        "phases": {p: {"counts": r["counts"], "energy_pj": r["energy_pj"]["total"],
                       "energy_per_sample_pj": r["energy_per_sample_pj"],
                       "latency_s": r["latency_s"], "latency_per_sample_s":
                       r["latency_per_sample_s"], "latency_cycles": r["latency_cycles"],
                       "energy_by_component_pj": {c: v["total"] for c, v in
                                                  r["energy_pj"]["by_component"].items()}}
                   for p, r in priced.items()},
    }


def run_estimate(config: str, overrides=(), *, from_run: str | None = None,
                 rates: str | None = None, calibrate_samples: int = 100) -> tuple[dict, str]:
    """`accel-sim estimate`: (the estimate with its spec and timings, where the activity
    came from). The activity is a run's traces, an earlier estimate's JSON, or a
    calibration run of `calibrate_samples` samples per phase."""
    import time

    from ..config import load_config
    from ..report import read_json

    cfg = load_config(config, overrides)
    if cfg.hardware is None:
        raise RunError("estimate needs a chip: add hardware and energy to the config")
    t0 = time.perf_counter()
    if from_run:
        spec, activity = activity_of_run(from_run)
        source = f"the traces of {from_run}"
    elif rates:
        given = read_json(rates)
        try:
            spec = NetworkSpec.from_dict(given["spec"])
            activity = activities_from_dict(given["activity"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{rates}: not an `estimate --json` output ({exc})") from None
        source = str(rates)
    else:
        if calibrate_samples < 1:
            raise RunError("--calibrate needs at least 1 sample")
        spec, activity, _ = calibrate(cfg, calibrate_samples)
        source = f"a calibration run on {calibrate_samples} samples per phase"
    t1 = time.perf_counter()
    out = estimate(cfg, spec, activity)
    out["name"] = cfg.name
    out["seconds"] = {"activity": t1 - t0, "estimate": time.perf_counter() - t1}
    out["spec"] = spec.to_dict()
    return out, source
