"""Tests for accel_sim.config: defaults, strict YAML, validation messages, overrides, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from accel_sim.config import (
    ConfigError,
    apply_overrides,
    config_model,
    config_to_dict,
    dump_config,
    load_config,
    parse_config,
    read_yaml,
)


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _problems(tmp_path: Path, text: str, overrides=()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text), overrides)
    return info.value.problems


# ------------------------------------------------------------------ defaults


def test_defaults_are_diehl_cook_constants():
    cfg = load_config(None)
    assert cfg.version == 1
    assert cfg.network.n_excitatory == 100
    assert cfg.encoding.dt_ms == 0.5
    assert cfg.encoding.present_ms == 350.0
    assert cfg.encoding.rest_ms == 150.0
    assert cfg.encoding.max_rate_hz == 63.75
    assert cfg.learning.nu_pre == 1e-4
    assert cfg.learning.nu_post == 1e-2
    assert cfg.network.exc.tau_theta_ms == 1e7
    assert cfg.network.exc.theta_plus_mv == 0.05
    assert cfg.network.synapse.w_exc_inh == 10.4
    assert cfg.network.synapse.w_inh_exc == 17.0
    assert cfg.data.dataset == "digits"
    assert list(cfg.run.phases) == ["train", "label", "infer"]


def test_defaults_equal_empty_file_with_version(tmp_path):
    assert load_config(_write(tmp_path, "version: 1\n")) == load_config(None) == config_model()()


def test_config_is_frozen():
    cfg = load_config(None)
    with pytest.raises(ValidationError, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]
    assert cfg.seed == 0


# --------------------------------------------------------------- strict YAML


def test_duplicate_key_reports_both_lines(tmp_path):
    problems = _problems(tmp_path, "version: 1\nseed: 1\nname: x\nseed: 2\n")
    assert len(problems) == 1
    assert "duplicate key 'seed'" in problems[0]
    assert "line 4" in problems[0] and "line 2" in problems[0]


def test_duplicate_nested_key(tmp_path):
    problems = _problems(tmp_path, "version: 1\nnetwork:\n  n_excitatory: 5\n  n_excitatory: 6\n")
    assert len(problems) == 1
    assert "line 4" in problems[0] and "line 3" in problems[0]


def test_duplicate_reported_together_with_validation_problems(tmp_path):
    problems = _problems(tmp_path, "version: 1\nseed: 1\nseed: 2\nnetwork: {n_excitatory: 0}\n")
    assert len(problems) == 2
    assert any("duplicate key 'seed'" in p for p in problems)
    assert any(p.startswith("network.n_excitatory:") for p in problems)


def test_read_yaml_duplicate_raises():
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        read_yaml("a: 1\na: 2\n")


def test_exponent_without_dot_is_float(tmp_path):
    cfg = load_config(_write(tmp_path, "version: 1\nnetwork:\n  exc:\n    tau_theta_ms: 2e7\n"))
    assert isinstance(cfg.network.exc.tau_theta_ms, float)
    assert cfg.network.exc.tau_theta_ms == 2e7
    assert read_yaml("x: 1e7")["x"] == 1e7
    assert isinstance(read_yaml("x: 1e-4")["x"], float)


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n"])
def test_yaml11_booleans_are_strings(word):
    assert read_yaml(f"x: {word}")["x"] == word


@pytest.mark.parametrize("word", ["true", "false", "True", "FALSE"])
def test_true_false_are_booleans(word):
    assert read_yaml(f"x: {word}")["x"] is (word.lower() == "true")


@pytest.mark.parametrize("word", ["yes", "no", "on"])
def test_bool_field_rejects_yes_no_on(tmp_path, word):
    problems = _problems(tmp_path, f"version: 1\nlearning:\n  normalise: {word}\n")
    assert len(problems) == 1
    assert problems[0].startswith("learning.normalise:")
    assert repr(word) in problems[0]


def test_yaml_syntax_error(tmp_path):
    problems = _problems(tmp_path, "version: 1\nlearning: [\n")
    assert len(problems) == 1
    assert problems[0].startswith("invalid YAML:")
    assert "\n" not in problems[0]


def test_top_level_not_a_mapping(tmp_path):
    problems = _problems(tmp_path, "- 1\n- 2\n")
    assert problems == ["a config is a mapping of sections, got list"]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_error_message_is_prefixed_with_source(tmp_path):
    path = _write(tmp_path, "version: 1\nseed: -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: seed:")


# -------------------------------------------------------------- unknown keys


def test_unknown_top_level_key_did_you_mean(tmp_path):
    assert _problems(tmp_path, "version: 1\nnetwrok: {}\n") == [
        "netwrok: unknown key; did you mean 'network'?"
    ]


def test_unknown_nested_key_did_you_mean(tmp_path):
    assert _problems(tmp_path, "version: 1\nnetwork:\n  n_excitatroy: 5\n") == [
        "network.n_excitatroy: unknown key; did you mean 'n_excitatory'?"
    ]


def test_unknown_deeply_nested_key_did_you_mean(tmp_path):
    problems = _problems(tmp_path, "version: 1\nnetwork:\n  exc:\n    tau_theta: 5.0\n")
    assert len(problems) == 1
    assert problems[0].startswith("network.exc.tau_theta: unknown key")
    assert "did you mean 'tau_theta_ms'?" in problems[0]


def test_hopeless_typo_lists_known_keys(tmp_path):
    problems = _problems(tmp_path, "version: 1\nnetwork:\n  zzzqqq: 5\n")
    assert len(problems) == 1
    assert problems[0].startswith("network.zzzqqq: unknown key; known keys:")
    for key in ("model", "n_excitatory", "state_reset", "exc", "inh", "synapse"):
        assert key in problems[0]
    assert "did you mean" not in problems[0]


def test_hopeless_top_level_typo_lists_sections(tmp_path):
    problems = _problems(tmp_path, "version: 1\nqqqzzz: 1\n")
    assert len(problems) == 1
    for key in ("version", "data", "encoding", "network", "learning", "run"):
        assert key in problems[0]


# ------------------------------------------------------- types, ranges, rules


@pytest.mark.parametrize(
    "yaml_text, path, fragment",
    [
        ("network:\n  n_excitatory: '5'\n", "network.n_excitatory", "valid integer"),
        ("network:\n  n_excitatory: 5.0\n", "network.n_excitatory", "valid integer"),
        ("seed: abc\n", "seed", "valid integer"),
        ("network:\n  exc:\n    tau_ms: -1\n", "network.exc.tau_ms", "greater than 0"),
        ("network:\n  exc:\n    tau_theta_ms: 0\n", "network.exc.tau_theta_ms", "greater than 0"),
        ("network:\n  n_excitatory: 0\n", "network.n_excitatory", "greater than 0"),
        ("learning:\n  epochs: 0\n", "learning.epochs", "greater than or equal to 1"),
        ("data:\n  dataset: cifar10\n", "data.dataset", "'nmnist', 'shd' or 'events'"),
        ("run:\n  backend: gpu\n", "run.backend", "'auto', 'cython' or 'numpy'"),
        ("encoding:\n  present_ms: 100.3\n", "encoding", "present_ms must be a whole number"),
        ("encoding:\n  rest_ms: 0.25\n", "encoding", "rest_ms must be a whole number"),
        (
            "network:\n  synapse:\n    w_init_min: 0.5\n    w_init_max: 0.5\n",
            "network.synapse",
            "w_init_max must be greater than w_init_min",
        ),
        ("run:\n  phases: [infer, train]\n", "run", "phases must keep the order"),
        ("run:\n  phases: [train, train]\n", "run", "must not repeat"),
        ("run:\n  phases: [train, infer]\n", "run.phases", "'infer' needs 'label'"),
        ("name: 'has space'\n", "name", "pattern"),
    ],
)
def test_single_problem_has_dotted_path(tmp_path, yaml_text, path, fragment):
    problems = _problems(tmp_path, "version: 1\n" + yaml_text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: "), problems[0]
    assert fragment in problems[0]


def test_value_is_echoed_in_message(tmp_path):
    (problem,) = _problems(tmp_path, "version: 1\nnetwork:\n  n_excitatory: 5.0\n")
    assert "(got 5.0)" in problem


def test_all_problems_reported(tmp_path):
    text = (
        "version: 1\n"
        "seed: -3\n"
        "netwrok: {}\n"
        "data:\n  dataset: cifar\n"
        "encoding:\n  dt_ms: 0.0\n"
        "network:\n  n_excitatory: 'many'\n  exc:\n    tau_ms: -5\n"
        "learning:\n  normalise: yes\n"
    )
    problems = _problems(tmp_path, text)
    assert len(problems) == 7, problems
    paths = sorted(p.split(":")[0] for p in problems)
    assert paths == sorted(
        [
            "seed",
            "netwrok",
            "data.dataset",
            "encoding.dt_ms",
            "network.n_excitatory",
            "network.exc.tau_ms",
            "learning.normalise",
        ]
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yaml")
    assert len(str(info.value).splitlines()) == 7


def test_missing_version(tmp_path):
    assert _problems(tmp_path, "seed: 1\n") == ["version: missing; add 'version: 1' at the top"]


def test_empty_file_needs_version(tmp_path):
    assert _problems(tmp_path, "") == ["version: missing; add 'version: 1' at the top"]


def test_version_2_rejected(tmp_path):
    problems = _problems(tmp_path, "version: 2\n")
    assert len(problems) == 1
    assert problems[0].startswith("version:") and "(got 2)" in problems[0]


def test_parse_config_checks_version_and_type():
    with pytest.raises(ConfigError, match="version: missing"):
        parse_config({"seed": 1})
    with pytest.raises(ConfigError, match="mapping of sections"):
        parse_config([1, 2])
    assert parse_config({"version": 1, "seed": 4}).seed == 4


# ------------------------------------------------------------------ overrides


def test_overrides_are_typed_via_yaml():
    cfg = load_config(
        None,
        [
            "network.n_excitatory=7",
            "learning.nu_pre=2e-4",
            "encoding.max_rate_hz=40",
            "data.classes=[1, 3]",
            "run.progress=true",
            "learning.normalise=false",
            "data.root=null",
            "name=my-run",
        ],
    )
    assert cfg.network.n_excitatory == 7 and isinstance(cfg.network.n_excitatory, int)
    assert cfg.learning.nu_pre == 2e-4
    assert cfg.encoding.max_rate_hz == 40.0
    assert cfg.data.classes == [1, 3]
    assert cfg.run.progress is True
    assert cfg.learning.normalise is False
    assert cfg.data.root is None
    assert cfg.name == "my-run"


def test_override_empty_value_is_null(tmp_path):
    path = _write(tmp_path, "version: 1\ndata:\n  root: /somewhere\n")
    assert load_config(path).data.root == "/somewhere"
    assert load_config(path, ["data.root="]).data.root is None


def test_override_beats_file_and_later_override_wins(tmp_path):
    path = _write(tmp_path, "version: 1\nseed: 1\n")
    assert load_config(path, ["seed=5"]).seed == 5
    assert load_config(path, ["seed=5", "seed=6"]).seed == 6


def test_override_creates_nested_sections():
    data = apply_overrides({"version": 1}, ["network.exc.tau_ms=50.0", "network.n_excitatory=9"])
    assert data == {"version": 1, "network": {"exc": {"tau_ms": 50.0}, "n_excitatory": 9}}
    cfg = load_config(None, ["network.exc.tau_ms=50.0"])
    assert cfg.network.exc.tau_ms == 50.0
    assert cfg.network.exc.v_rest_mv == -65.0  # siblings keep their defaults


@pytest.mark.parametrize("bad", ["foo", "=3", " =3"])
def test_malformed_override(bad):
    with pytest.raises(ConfigError) as info:
        load_config(None, [bad])
    assert len(info.value.problems) == 1
    assert "expected KEY=VALUE" in info.value.problems[0]


def test_all_malformed_overrides_reported():
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, ["foo", "=3", "ok=1"])
    assert len(info.value.problems) == 2


def test_override_into_non_section(tmp_path):
    path = _write(tmp_path, "version: 1\nseed: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["seed.x=3"])
    assert info.value.problems == ["--set seed.x: seed is not a section"]


def test_override_into_non_section_deeper():
    with pytest.raises(ConfigError, match="network.n_excitatory is not a section"):
        apply_overrides({"network": {"n_excitatory": 3}}, ["network.n_excitatory.a.b=1"])


def test_override_with_bad_yaml_value():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["data.classes=[1, 2"])
    assert info.value.problems[0].startswith("--set data.classes: invalid YAML")


def test_override_unknown_key_did_you_mean():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["network.n_excitatroy=3"])
    assert info.value.problems == [
        "network.n_excitatroy: unknown key; did you mean 'n_excitatory'?"
    ]


def test_override_bad_value_is_validated():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["learning.normalise=yes"])
    assert info.value.problems[0].startswith("learning.normalise:")


# ----------------------------------------------------------------- round trip


def test_round_trip_with_non_defaults(tmp_path):
    cfg = load_config(
        None,
        [
            "name=rt.test-1",
            "seed=12345",
            "data.dataset=mnist",
            "data.root=/data/here",
            "data.train_samples=500",
            "data.classes=[0, 1, 7]",
            "data.shuffle=true",
            "encoding.dt_ms=0.25",
            "encoding.present_ms=200.25",
            "network.n_excitatory=400",
            "network.exc.tau_theta_ms=2e7",
            "network.exc.theta_plus_mv=1e-5",
            "network.synapse.w_init_max=0.5",
            "learning.nu_pre=3e-05",
            "learning.norm_total=12.5",
            "learning.epochs=3",
            "run.phases=[label, infer]",
            "run.trace_phases=[]",
            "run.progress=false",
            "run.backend=numpy",
        ],
    )
    assert cfg != load_config(None)
    text = dump_config(cfg)
    again = load_config(_write(tmp_path, text, "resolved.yaml"))
    assert again == cfg
    assert config_to_dict(again) == config_to_dict(cfg)
    assert dump_config(again) == text


def test_round_trip_with_a_chip_and_numeric_table_keys(tmp_path):
    """The 45 nm table maps SRAM capacities (numbers) to pJ/bit: the keys stay numbers."""
    cfg = load_config(None, ["hardware=edge", "energy=generic_45nm"])
    by_kib = cfg.energy.components["sram"].actions["read_word"].pj_per_bit_by_kib
    assert by_kib and all(isinstance(k, float) for k in by_kib)
    text = dump_config(cfg)
    assert load_config(_write(tmp_path, text, "resolved.yaml")) == cfg


def test_dump_lists_every_key():
    data = read_yaml(dump_config(load_config(None)))
    assert data == config_to_dict(load_config(None))
    assert set(data) == {"version", "name", "seed", "data", "encoding", "network", "learning", "run",
                         "hardware", "energy"}
    assert data["hardware"] is None and data["energy"] is None  # no chip unless asked for
    assert data["network"]["exc"]["tau_theta_ms"] == 1e7


# ------------------------------------------- YAML 1.2 scalars survive a round trip


def test_round_trip_string_that_looks_like_exponent_float(tmp_path):
    cfg = load_config(None, ["name='1e3'"])
    assert cfg.name == "1e3"
    assert load_config(_write(tmp_path, dump_config(cfg))) == cfg


def test_leading_zero_int_is_decimal():
    assert read_yaml("x: 010")["x"] == 10


def test_sexagesimal_and_signed_dot_floats():
    assert read_yaml("x: 1:30")["x"] == "1:30"
    assert read_yaml("x: -.5")["x"] == -0.5


def test_infinite_values_are_rejected():
    with pytest.raises(ConfigError, match="network.exc.tau_theta_ms"):
        load_config(None, ["network.exc.tau_theta_ms=.inf"])
