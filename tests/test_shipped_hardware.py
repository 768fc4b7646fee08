"""Shipped chips (configs/chips) and energy tables (configs/energy) validate and keep their sourced numbers."""
from pathlib import Path

import pytest

from accel_sim.config.energy import EnergyTableConfig
from accel_sim.energy.table import EnergyTable
from accel_sim.registry import COMPONENT_ACTIONS, COMPONENTS
from accel_sim.config.hardware import DRAM_KINDS, HardwareConfig
from accel_sim.config.loader import read_yaml

CONFIGS = Path(__file__).parent.parent / "configs"
CHIPS = sorted((CONFIGS / "chips").glob("*.yaml"))
TABLES = sorted((CONFIGS / "energy").glob("*.yaml"))


def _chip(name: str) -> HardwareConfig:
    path = CONFIGS / "chips" / f"{name}.yaml"
    return HardwareConfig.model_validate(read_yaml(path.read_text(), str(path)))


def _table(name: str) -> EnergyTableConfig:
    path = CONFIGS / "energy" / f"{name}.yaml"
    return EnergyTableConfig.model_validate(read_yaml(path.read_text(), str(path)))


def test_the_shipped_files_exist():
    assert {p.stem for p in CHIPS} >= {"edge", "loihi_like", "spill"}
    assert {p.stem for p in TABLES} >= {"generic_45nm", "loihi_2018", "sanafe_loihi"}


@pytest.mark.parametrize("path", CHIPS, ids=lambda p: p.name)
def test_chip_is_valid(path):
    chip = _chip(path.stem)
    assert chip.name == path.stem


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.name)
def test_energy_table_is_valid_and_every_number_is_sourced(path):
    table = _table(path.stem)
    assert table.name == path.stem
    assert set(table.components) == set(COMPONENT_ACTIONS)
    for comp, spec in table.components.items():
        # every action priced, or left to the one it is priced as (a synapse unit as synop)
        assert set(spec.actions) <= set(COMPONENT_ACTIONS[comp])
        assert {a for a in COMPONENT_ACTIONS[comp] if a not in spec.actions} <= \
            {a for a, _ in COMPONENTS[comp].priced_as}
        for action, energy in spec.actions.items():
            assert energy.source.strip(), f"{comp}.{action} has no source"
        assert spec.static_mw is not None or spec.static_mw_per_kib is not None, \
            f"{comp}: static power not stated (write 0 with a static_source)"
        assert spec.static_source and spec.static_source.strip(), f"{comp}: no static_source"


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.name)
def test_dram_per_bit_covers_every_kind(path):
    dram = _table(path.stem).components["dram"]
    for action in ("read_bit", "write_bit"):
        by_kind = dram.actions[action].pj_per_bit_by_kind
        assert by_kind is not None and set(by_kind) == set(DRAM_KINDS)


def test_loihi_table_is_davies_2018_table_2():
    table = _table("loihi_2018")
    assert table.basis == "pre_silicon"
    core = table.components["core"].actions
    assert core["synop"].energy_pj == 23.6
    assert core["neuron_update_active"].energy_pj == 81.0
    assert core["neuron_update_idle"].energy_pj == 52.0
    assert core["stdp_update"].energy_pj == 120.0
    router = table.components["router"].actions
    assert (router["hop_ew"].energy_pj, router["hop_ns"].energy_pj,
            router["local_delivery"].energy_pj) == (3.0, 4.0, 1.7)
    # Table 2's synaptic op includes the weight read: the SRAM read is free here.
    read = table.components["sram"].actions["read_word"]
    assert read.energy_pj == 0.0 and "included in core.synop" in read.source


def test_sanafe_table_is_the_calibrated_loihi():
    table = _table("sanafe_loihi")
    assert table.basis == "calibrated"
    core = table.components["core"].actions
    assert core["synop"].energy_pj == 35.5
    assert core["neuron_update_active"].energy_pj == pytest.approx(51.2 + 21.6)
    assert core["neuron_update_idle"].energy_pj == 51.2
    assert core["spike_out"].energy_pj == 69.3
    router = table.components["router"].actions
    assert (router["hop_ew"].energy_pj, router["hop_ns"].energy_pj,
            router["inject"].energy_pj) == (3.0, 4.2, 111.0)


def test_generic_sram_is_horowitz():
    read = _table("generic_45nm").components["sram"].actions["read_word"]
    assert read.pj_per_bit_by_kib == {8.0: 10 / 64, 32.0: 20 / 64, 1024.0: 100 / 64}


def test_edge_holds_diehl_cook_400():
    chip = _chip("edge")
    assert chip.cores.count * chip.cores.neurons_per_core >= 800
    # balanced: 25 exc + 25 inh per core; fan-in 784*25 + 400*25 + 25 32-bit weights
    assert (784 * 25 + 400 * 25 + 25) * 4 <= chip.sram.size_kib * 1024


def test_spill_chip_cannot_hold_diehl_cook_400_weights():
    chip = _chip("spill")
    assert chip.cores.count * chip.sram.size_kib * 1024 < 1.9e6
    assert chip.cores.count * chip.cores.neurons_per_core >= 800


def test_loihi_like_is_loihi_sized():
    chip = _chip("loihi_like")
    assert chip.cores.count == 128 and chip.cores.neurons_per_core == 1024
    assert chip.sram.size_kib == 128.0


@pytest.mark.parametrize("table_path", TABLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("chip_path", CHIPS, ids=lambda p: p.stem)
def test_every_table_prices_every_chip(chip_path, table_path):
    resolved = EnergyTable(_table(table_path.stem)).resolve(_chip(chip_path.stem))
    assert all(v >= 0 for v in resolved.pj.values())
    assert len(resolved.pj) == sum(len(a) for a in COMPONENT_ACTIONS.values())
