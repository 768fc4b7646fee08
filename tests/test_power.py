"""SRAM bank power states (chip/power.py, hardware.power): hand-counted banks, stretches
and wake-ups on a chip whose SRAM holds one row per bank, the same at every fidelity, and
priced as the static power the banks saved."""
import numpy as np
import pytest
from test_chip_graph import chip

from accel_sim import (
    ConfigError,
    NetworkSpec,
    Population,
    Projection,
    SpikeTrace,
    load_energy_table,
    price,
    simulate,
)
from accel_sim.config.energy import EnergyTableConfig
from accel_sim.energy import EnergyTable
from accel_sim.energy.price import price_instances
from accel_sim.errors import TableError

#: 3 inputs -> 2 neurons on core 0 (none on core 1): a 64-bit weight per row and core, 2
#: words per row; 64 bytes of SRAM = 8 words in 4 banks of 2: row s in bank s, so core 0
#: uses banks 0-2 and bank 3 holds nothing, core 1 holds nothing
SPEC = NetworkSpec((Population("in", 3, "input"), Population("a", 2, "lif")),
                   (Projection("in", "a", "dense", 64),))
PLACE = {"a": np.array([0, 0])}
#: input 0 fires at step 0, input 1 at step 2: bank 0 is read at step 0, bank 1 at step 2
RASTER = np.zeros((5, 3), bool)
RASTER[0, 0] = RASTER[2, 1] = True


def _hw(**power):
    return chip(sram={"size_kib": 0.0625, "word_bits": 64, "banks": 4}, power=power)


def _run(fidelity="timestep", **power):
    trace = SpikeTrace.from_rasters(SPEC, {"in": RASTER})
    return simulate(trace, _hw(**power), fidelity=fidelity, placement=PLACE)


def test_always_on_counts_no_bank_state():
    r = _run()
    assert not any(k in r.counts for k in ("sram.wake", "sram.retention_bank_cycles",
                                           "sram.off_bank_cycles"))


@pytest.mark.parametrize("fidelity", ["timestep", "event", "simpy"])
def test_gate_unused_turns_off_the_banks_that_hold_nothing(fidelity):
    on, gated = _run(fidelity), _run(fidelity, sram="gate_unused")
    assert gated.cycles == on.cycles  # gating what holds nothing costs no time
    assert gated.counts["sram.off_bank_cycles"] == (1 + 4) * on.cycles
    assert gated.counts["sram.wake"] == gated.counts["sram.retention_bank_cycles"] == 0
    assert gated.instances["core"]["sram.off_bank_cycles"] == [on.cycles, 4 * on.cycles]


@pytest.mark.parametrize("fidelity", ["timestep", "event", "simpy"])
def test_idle_banks_sleep_in_retention_and_wake_before_the_step_that_reads_them(fidelity):
    on = _run(fidelity)
    c = np.array(on.first_step_cycles)  # the five steps, all banks on
    assert len(c) == 5
    r = _run(fidelity, sram="retention_when_idle", wake_cycles=7)
    # bank 0: idle at steps 1-4 (wakes after the presentation); bank 1: idle at 0-1 (wakes
    # before step 2, which takes 7 cycles more) and at 3-4; bank 2: idle at all five
    assert r.counts["sram.wake"] == 4
    assert r.counts["sram.retention_bank_cycles"] == (
        c[1:].sum() + c[:2].sum() + c[3:].sum() + c.sum())
    assert r.cycles == on.cycles + 7
    assert r.first_step_cycles == (c + np.array([0, 0, 7, 0, 0])).tolist()
    assert r.counts["sram.off_bank_cycles"] == 5 * r.cycles
    assert r.instances["core"]["sram.wake"] == [4, 0]


def test_stdp_write_backs_touch_a_rows_bank_and_a_columns_every_bank():
    spec = NetworkSpec(SPEC.populations, (Projection("in", "a", "dense", 64, "stdp"),))
    name = spec.projections[0].name
    col, row = np.zeros((5, 2), bool), np.zeros((5, 3), bool)
    col[3, 0] = True  # neuron a0's column at step 3: banks 0-2 of its core
    row[4, 2] = True  # source 2's row at step 4: bank 2
    trace = SpikeTrace.from_rasters(spec, {"in": RASTER}, learn=True,
                                    streams={f"{name}:col": col, f"{name}:row": row})
    r = simulate(trace, _hw(sram="retention_when_idle"), placement=PLACE)
    c = np.array(r.first_step_cycles)
    # bank 0 idle at 1-2 and 4; bank 1 at 0-1 and 4; bank 2 at 0-2
    assert r.counts["sram.wake"] == 5
    assert r.counts["sram.retention_bank_cycles"] == (
        c[1:3].sum() + c[4] + c[:2].sum() + c[4] + c[:3].sum())


def test_a_stretch_shorter_than_break_even_stays_on():
    c = np.array(_run().first_step_cycles)
    short = max(c[:2].sum(), c[3:].sum())  # bank 1's two stretches
    assert short < c[1:].sum()  # bank 0's is longer
    r = _run(sram="retention_when_idle", wake_cycles=7, retention_after_cycles=int(short) + 1)
    # bank 1 stays on (and step 2 needs no wake-up); banks 0 and 2 sleep as before
    assert r.counts["sram.wake"] == 2
    assert r.counts["sram.retention_bank_cycles"] == c[1:].sum() + c.sum()
    assert r.cycles == int(c.sum())


def test_bank_states_are_priced_as_the_static_power_they_save():
    table = load_energy_table("generic_45nm")
    r = _run(sram="retention_when_idle", wake_cycles=7)
    on, cost = price(_run(), table).energy_pj, price(r, table).energy_pj
    hw = r.hardware
    resolved = EnergyTable(table).resolve(hw)
    pj_per_mw_cycle = 1e-3 / (hw.clock_mhz * 1e6) * 1e12
    bank_mw = resolved.static_mw["sram"] / (hw.cores.count * hw.sram.banks)
    saved = bank_mw * pj_per_mw_cycle * (
        r.counts["sram.off_bank_cycles"]
        + (1 - resolved.retention_ratio["sram"]) * r.counts["sram.retention_bank_cycles"])
    full = resolved.static_mw["sram"] * pj_per_mw_cycle * r.cycles
    assert 0 < resolved.retention_ratio["sram"] < 1
    assert cost.static_by_component["sram"] == pytest.approx(full - saved, rel=1e-12)
    assert cost.dynamic_by_component["sram"] == pytest.approx(
        on.dynamic_by_component["sram"] + 4 * resolved.pj["sram", "wake"], rel=1e-12)
    # per core, the static energy adds up to the phase's
    inst = price_instances(r.instances, r.cycles, hw.clock_mhz, resolved)
    assert sum(e["energy_pj"]["static"] for e in inst["cores"]) == pytest.approx(
        cost.static_by_component["core"] + cost.static_by_component["sram"], rel=1e-12)


def test_retention_needs_a_barrier_and_a_table_that_prices_it():
    with pytest.raises(ConfigError, match="retention_when_idle decides per time step"):
        chip(power={"sram": "retention_when_idle"}, sync={"barrier": False})
    with pytest.raises(ConfigError, match="up to 63 banks"):
        chip(power={"sram": "retention_when_idle"}, sram={"banks": 64})
    assert chip(power={"sram": "gate_unused"}, sram={"banks": 64}).sram.banks == 64
    data = load_energy_table("generic_45nm").model_dump()
    sram = data["components"]["sram"]
    del sram["retention_ratio"], sram["retention_source"]
    with pytest.raises(TableError, match="retention_ratio"):
        price(_run(sram="retention_when_idle"), EnergyTableConfig.model_validate(data))
