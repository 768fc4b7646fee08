"""accel_sim.tables and accel_sim.plot on a hand-made stats["hardware"]."""
import copy
import csv
import math

import pytest

from accel_sim.energy import ResolvedTable, price_phase
from accel_sim.tables import CSV_FIELDS, energy_rows, format_hardware_summary, write_energy_csv

# Clock 200 MHz: one cycle is 5 ns, so a class burning P mW costs P * 5 pJ per cycle.
#
# train, 1000 cycles                 dynamic pJ           static pJ (mW -> pJ/cycle)
#   core   synop 1000*0.5=500, neuron_update 200*2=400, stdp_update 100*3=300
#                                      1200    2.0 mW -> 10 pJ/cyc -> 10000   = 11200
#   sram   read_word 400*5=2000, write_word 100*6=600
#                                      2600    1.0 mW ->  5        ->  5000   =  7600
#   dram   read_bit 50*20=1000         1000    4.0 mW -> 20        -> 20000   = 21000  dominant
#   router inject 40*4=160, hop 80*1.5=120
#                                       280    0.2 mW ->  1        ->  1000   =  1280
#   chip   input_spike 300*0.2=60        60    0.5 mW ->  2.5      ->  2500   =  2560
#                                      5140                          38500     43640
# infer, 400 cycles, power-gated (static 0)
#   core   synop 2000*0.5=1000, neuron_update 100*2=200       1200
#   sram   read_word 800*5=4000                               4000   dominant
#   dram   read_bit 10*20=200                                  200
#   router inject 20*4=80, hop 40*1.5=60                       140
#   chip   input_spike 150*0.2=30                               30
#                                                             5570


def _phase(samples, cycles, counts, pj, static_mw, dynamic, static):
    by = {c: {"dynamic": float(dynamic[c]), "static": float(static[c]),
              "total": float(dynamic[c] + static[c])} for c in dynamic}
    total = sum(dynamic.values()) + sum(static.values())
    return {
        "samples": samples, "presentations": samples + 2, "time_steps": 350 * samples,
        "latency_cycles": cycles, "latency_s": cycles / 200e6,
        "energy_pj": {"total": float(total), "dynamic": float(sum(dynamic.values())),
                      "static": float(sum(static.values())), "by_component": by},
        "energy_per_sample_pj": total / samples, "latency_per_sample_s": cycles / 200e6 / samples,
        "edp_pj_s": total * cycles / 200e6,
        "counts": counts, "pj_per_action": pj, "static_mw": static_mw,
    }


PJ = {"core.synop": 0.5, "core.neuron_update": 2.0, "core.stdp_update": 3.0,
      "sram.read_word": 5.0, "sram.write_word": 6.0, "dram.read_bit": 20.0,
      "router.inject": 4.0, "router.hop": 1.5, "chip.input_spike": 0.2}

TRAIN = _phase(
    samples=10, cycles=1000,
    counts={"core.synop": 1000, "core.neuron_update": 200, "core.stdp_update": 100,
            "sram.read_word": 400, "sram.write_word": 100, "dram.read_bit": 50,
            "router.inject": 40, "router.hop": 80, "chip.input_spike": 300},
    pj=dict(PJ),
    static_mw={"core": 2.0, "sram": 1.0, "dram": 4.0, "router": 0.2, "chip": 0.5},
    dynamic={"core": 1200, "sram": 2600, "dram": 1000, "router": 280, "chip": 60},
    static={"core": 10000, "sram": 5000, "dram": 20000, "router": 1000, "chip": 2500})
INFER = _phase(
    samples=5, cycles=400,
    counts={"core.synop": 2000, "core.neuron_update": 100, "sram.read_word": 800,
            "dram.read_bit": 10, "router.inject": 20, "router.hop": 40,
            "chip.input_spike": 150},
    pj={k: v for k, v in PJ.items() if k not in ("core.stdp_update", "sram.write_word")},
    static_mw={"core": 0.0, "sram": 0.0, "dram": 0.0, "router": 0.0, "chip": 0.0},
    dynamic={"core": 1200, "sram": 4000, "dram": 200, "router": 140, "chip": 30},
    static={"core": 0, "sram": 0, "dram": 0, "router": 0, "chip": 0})


@pytest.fixture
def hardware():
    # infer listed first on purpose: rows must still come out train before infer.
    return copy.deepcopy({
        "chip": "edge", "energy_table": "generic_45nm", "technology": "45 nm, 0.9 V",
        "basis": "derived", "fidelity": "timestep", "clock_mhz": 200.0,
        "phases": {"infer": INFER, "train": TRAIN}})


#: the table at the top, as literals: (total, per component (dynamic, static)) in pJ
HAND = {"train": (43640.0, {"core": (1200, 10000), "sram": (2600, 5000), "dram": (1000, 20000),
                            "router": (280, 1000), "chip": (60, 2500)}),
        "infer": (5570.0, {"core": (1200, 0), "sram": (4000, 0), "dram": (200, 0),
                           "router": (140, 0), "chip": (30, 0)})}


@pytest.mark.parametrize("name,phase", [("train", TRAIN), ("infer", INFER)])
def test_pricing_reproduces_the_hand_computed_phases(name, phase):
    """price_phase, given the counts, pJ per action and static mW, computes the table in
    the comment at the top (43,640 pJ train, 5,570 pJ infer)."""
    pj = {tuple(k.split(".")): v for k, v in phase["pj_per_action"].items()}
    table = ResolvedTable("t", "test", "derived", pj, phase["static_mw"], {})
    got = price_phase(phase["counts"], phase["latency_cycles"], 200.0, table,
                      samples=phase["samples"], presentations=phase["presentations"],
                      time_steps=phase["time_steps"])
    total, by = HAND[name]
    assert got["energy_pj"]["total"] == pytest.approx(total, rel=1e-12)
    assert got["energy_per_sample_pj"] == pytest.approx(total / phase["samples"], rel=1e-12)
    for comp, (dynamic, static) in by.items():
        parts = got["energy_pj"]["by_component"][comp]
        assert (parts["dynamic"], parts["static"]) == (pytest.approx(dynamic),
                                                       pytest.approx(static)), comp


# ----------------------------------------------------------------- energy_rows

def test_action_rows_are_count_times_pj(hardware):
    rows = [r for r in energy_rows(hardware) if r["action"] != "static"]
    assert len(rows) == len(TRAIN["counts"]) + len(INFER["counts"]) == 16
    for r in rows:
        key = f"{r['component']}.{r['action']}"
        assert r["count"] == hardware["phases"][r["phase"]]["counts"][key]
        assert r["pj_per_action"] == PJ[key]
        assert r["energy_pj"] == pytest.approx(r["count"] * r["pj_per_action"], rel=1e-12)
    by_key = {(r["phase"], r["component"], r["action"]): r["energy_pj"] for r in rows}
    assert by_key[("train", "sram", "read_word")] == pytest.approx(2000.0)
    assert by_key[("infer", "core", "synop")] == pytest.approx(1000.0)


def test_rows_of_a_phase_sum_to_its_total(hardware):
    rows = energy_rows(hardware)
    for phase, expected in (("train", 43640.0), ("infer", 5570.0)):
        got = math.fsum(r["energy_pj"] for r in rows if r["phase"] == phase)
        assert got == pytest.approx(hardware["phases"][phase]["energy_pj"]["total"], rel=1e-9)
        assert got == pytest.approx(expected, rel=1e-9)


def test_static_rows(hardware):
    static = [r for r in energy_rows(hardware) if r["action"] == "static"]
    assert len(static) == 10    # one per (phase, class)
    for r in static:
        ph = hardware["phases"][r["phase"]]
        assert r["energy_pj"] == ph["energy_pj"]["by_component"][r["component"]]["static"]
        assert r["count"] == ph["latency_cycles"]
        # 1 mW at 200 MHz is 5 pJ per cycle
        assert r["pj_per_action"] == pytest.approx(ph["static_mw"][r["component"]] * 5.0)
    core_train = next(r for r in static if (r["phase"], r["component"]) == ("train", "core"))
    assert core_train["pj_per_action"] == pytest.approx(10.0)
    assert core_train["energy_pj"] == 10000.0


def test_rows_sorted_phase_component_action(hardware):
    rows = energy_rows(hardware)
    keys = [(r["phase"], r["component"], r["action"]) for r in rows]
    assert [k[0] for k in keys] == ["train"] * 14 + ["infer"] * 12
    assert keys == sorted(keys, key=lambda k: (["train", "label", "infer"].index(k[0]),
                                               k[1], k[2]))
    assert keys[0] == ("train", "chip", "input_spike")


def test_unknown_phase_comes_after_known_ones(hardware):
    hardware["phases"] = {"calibrate": copy.deepcopy(INFER), **hardware["phases"]}
    phases = [r["phase"] for r in energy_rows(hardware)]
    assert phases == ["train"] * 14 + ["infer"] * 12 + ["calibrate"] * 12


def test_bad_inputs_are_clear_errors(hardware):
    del hardware["phases"]["train"]["pj_per_action"]["dram.read_bit"]
    with pytest.raises(ValueError, match="dram.read_bit"):
        energy_rows(hardware)


# ------------------------------------------------------------------------- CSV

def test_energy_csv(hardware, tmp_path):
    path = write_energy_csv(hardware, tmp_path / "energy.csv")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "phase,component,action,count,pj_per_action,energy_pj"
    assert tuple(text.splitlines()[0].split(",")) == CSV_FIELDS
    with path.open(newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    rows = energy_rows(hardware)
    assert len(got) == len(rows) == 26
    assert [(g["phase"], g["component"], g["action"]) for g in got] == \
        [(r["phase"], r["component"], r["action"]) for r in rows]
    assert math.fsum(float(g["energy_pj"]) for g in got if g["phase"] == "train") == \
        pytest.approx(43640.0, rel=1e-9)
    assert [p.name for p in tmp_path.iterdir()] == ["energy.csv"]    # no temp file left


# --------------------------------------------------------------------- summary

def test_summary_names_dominant_and_every_phase(hardware):
    text = format_hardware_summary(hardware)
    lines = text.splitlines()
    for phase in ("train", "infer"):
        assert any(line.startswith(f"hardware.{phase}.energy_pj.total") for line in lines)
    total = next(line for line in lines if line.startswith("hardware.train.energy_pj.total"))
    assert total.split()[1] == "43640"
    assert "dominant component: dram (48.1 % of train energy)" in text
    assert "dominant component: sram (71.8 % of infer energy)" in text
    assert text.index("# train:") < text.index("# infer:")
    # component tables sorted by total, descending: train is dram, core, sram, chip, router
    train_table = text[text.index("# train:"):text.index("dominant component: dram")]
    order = [line.split()[1] for line in train_table.splitlines()[2:-1]]
    assert order == ["dram", "core", "sram", "chip", "router"]
    top_train = text[text.index("top dynamic actions"):text.index("# infer:")]
    names = [line.split()[1] for line in top_train.splitlines()[1:] if line.strip()]
    assert names == ["sram.read_word", "dram.read_bit", "sram.write_word", "core.synop",
                     "core.neuron_update"]
    assert max(len(line) for line in lines) <= 100


def test_summary_lists_only_present_phases(hardware):
    del hardware["phases"]["infer"]
    text = format_hardware_summary(hardware)
    assert "hardware.train." in text
    assert "infer" not in text


# ------------------------------------------------------------------------ plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path):
    import matplotlib.image as mpimg
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 0.01            # not a blank canvas


def test_plot_energy_breakdown(hardware, tmp_path):
    from accel_sim.plot import plot_energy_breakdown
    out = plot_energy_breakdown(hardware, tmp_path / "breakdown.png")
    assert out == tmp_path / "breakdown.png"
    _check_png(out)
    assert [p.name for p in tmp_path.iterdir()] == ["breakdown.png"]


def test_plot_one_phase_with_zero_static(hardware, tmp_path):
    from accel_sim.plot import plot_energy_breakdown
    del hardware["phases"]["train"]
    assert hardware["phases"]["infer"]["energy_pj"]["static"] == 0.0
    _check_png(plot_energy_breakdown(hardware, tmp_path / "infer.png"))


def test_plot_rejects_phase_without_samples(hardware, tmp_path):
    from accel_sim.plot import plot_energy_breakdown
    hardware["phases"]["infer"]["samples"] = 0
    with pytest.raises(ValueError, match="samples"):
        plot_energy_breakdown(hardware, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_breakdown_names_only_components_with_energy_and_labels_alike(hardware, tmp_path):
    from accel_sim.plot import _classes, format_uj, plot_energy_breakdown
    from accel_sim.tables import _phases

    for ph in hardware["phases"].values():
        ph["energy_pj"]["by_component"]["dram"] = {"dynamic": 0.0, "static": 0.0, "total": 0.0}
    assert "dram" not in _classes(_phases(hardware))
    assert [format_uj(v) for v in (1234.4, 123.44, 12.344, 1.2344, 0.012344, 0.0)] == [
        "1,234 µJ", "123 µJ", "12.3 µJ", "1.23 µJ", "0.0123 µJ", "0 µJ"]
    out = plot_energy_breakdown(hardware, tmp_path / "b.png", model="a_model_with_a_long_name")
    import matplotlib.image as mpimg
    assert mpimg.imread(out).shape[1] < 1200  # the title wraps instead of widening the image


def test_pareto_marks_every_point_and_separates_equal_ones(tmp_path):
    import matplotlib.image as mpimg

    from accel_sim.sweep.results import _styles, plot_pareto

    rows = [{"index": i, "status": "ok", "a.size": s, "b.cast": c, "c.bits": b,
             "infer.energy_per_sample_pj": 1e6 * (10 + s), "infer.latency_per_sample_s": 1e-6}
            for i, (s, c, b) in enumerate([(1, "u", 8), (1, "u", 16), (2, "m", 8), (2, "u", 8)])]
    style, keys, handles = _styles(rows, ["a.size", "b.cast", "c.bits"])
    assert keys == {"colour": "a.size", "marker": "b.cast"}
    assert style[0] == style[1] == ("C0", "s") and style[2] == ("C1", "o")  # values sorted
    assert style[3] == ("C1", "s")
    assert [h.get_label() for h in handles] == ["a.size = 1", "a.size = 2", "b.cast = m",
                                                "b.cast = u"]
    out = plot_pareto(rows, tmp_path / "p.png", swept=["a.size", "b.cast", "c.bits"])
    _check_png(out)
    assert mpimg.imread(out).shape[1] > 100
