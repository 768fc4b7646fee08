"""Read, override and validate configs; every problem is collected and reported.

YAML is read with a strict loader: duplicate keys are errors (PyYAML silently
keeps the last one), `1e7` is a float (PyYAML reads it as a string) and only
true/false are booleans (not yes/no/on/off). Validation errors carry the dotted
path of the key and, for unknown keys, a "did you mean".
"""
from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ValidationError

from .. import registry
from ..errors import ConfigError
from .schema import Config, config_model, cross_checks

__all__ = ["ConfigError", "load_config", "load_resolved", "parse_config", "read_yaml",
           "apply_overrides", "config_to_dict", "dump_config", "load_section", "preset_names",
           "file_kind", "shipped_config", "MODIFIED"]

#: appended to a chip's or table's name when --set changed one of its keys
MODIFIED = " (modified)"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style floats and booleans and duplicate-key detection."""


_DROP = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float", "tag:yaml.org,2002:int")
_StrictLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in _DROP]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.2 core schema: true/false only; decimal (or 0x/0o) integers, no octal-by-leading-zero
# and no sexagesimal 1:30; floats with or without a dot (1e7, -.5, .inf, .nan).
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$"),
    list("-+0123456789"))
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9]+)\.[0-9]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9]+[eE][-+]?[0-9]+
        |[-+]?\.[0-9]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _int_1_2(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0) if text.startswith("0x") else int(text, 10)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _int_1_2)


class _StrictDumper(yaml.SafeDumper):
    """Quotes exactly the strings that _StrictLoader would read as something else."""


_StrictDumper.yaml_implicit_resolvers = _StrictLoader.yaml_implicit_resolvers


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            loader.duplicates.append(f"line {line}: duplicate key {key!r} (first on line {seen[key]})")
        else:
            seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str, source: str | None = None) -> Any:
    """Parse YAML text strictly; raises ConfigError on syntax errors or duplicate keys."""
    data, duplicates = _read_yaml(text, source)
    if duplicates:
        raise ConfigError(duplicates, source)
    return data


def _read_yaml(text: str, source: str | None) -> tuple[Any, list[str]]:
    loader = _StrictLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError([f"invalid YAML: {exc}".replace("\n", " ")], source) from None
    finally:
        loader.dispose()
    return data, loader.duplicates


def _section_model(ann: Any) -> type[BaseModel] | None:
    """The model class behind a field annotation: X, Optional[X], dict[K, X]."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _section_model(arg)
        if found is not None:
            return found
    return None


#: sections whose model a family chooses, and the key that chooses it
_UNIONS = {"network": "model", "learning": "rule"}


def _family_section(section: str, data: Any) -> type[BaseModel] | None:
    """The model of `network` or `learning` that the config's own keys select."""
    node = data.get(section) if isinstance(data, dict) else None
    model = node.get("model") if section == "network" and isinstance(node, dict) else None
    if section == "network":
        try:
            return registry.family_of(model or registry.DEFAULT_MODEL).network_config
        except ConfigError:
            return None
    rule = node.get("rule") if isinstance(node, dict) else None
    for fam in registry.families().values():
        if fam.learning_config.model_fields["rule"].default == rule:
            return fam.learning_config
    return None


def _model_at(path: tuple, data: Any) -> type[BaseModel] | None:
    """The section model at a dotted path of the config (None if not a section)."""
    model: Any = config_model()
    parts = list(path)
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        if typing.get_origin(ann) is dict:  # e.g. energy.components.<kind>: skip the key
            if not parts:
                return None
            parts.pop(0)
        if model is config_model() and part in _UNIONS:
            model = _family_section(part, data)
        else:
            model = _section_model(ann)
        if model is None:
            return None
    return model


def _did_you_mean(path: tuple, key: str, data: Any) -> str:
    model = _model_at(path, data)
    if model is None:
        return ""
    names = list(model.model_fields)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; known keys: {', '.join(names)}"


def _location(loc: tuple, data: Any) -> tuple:
    """A validation error's path without the union's tag (network.<model>.key)."""
    if len(loc) > 1 and loc[0] in _UNIONS:
        node = data.get(loc[0]) if isinstance(data, dict) else None
        if isinstance(node, dict) and loc[1] == node.get(_UNIONS[loc[0]]):
            return (loc[0],) + tuple(loc[2:])
    return loc


def _format(err: dict, data: Any = None) -> str:
    loc = _location(tuple(err["loc"]), data)
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{dotted}: unknown key{_did_you_mean(loc[:-1], str(loc[-1]), data)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = err.get("input")
    if err["type"] not in ("missing",) and not isinstance(got, (dict, list)):
        msg += f" (got {got!r})"
    return f"{dotted}: {msg}"


def _known_model(data: dict) -> str | None:
    """A problem line if `network.model` names no registered family."""
    net = data.get("network")
    model = net.get("model", registry.DEFAULT_MODEL) if isinstance(net, dict) else None
    if model is None or model in registry.model_names():
        return None
    close = difflib.get_close_matches(str(model), registry.model_names(), n=1, cutoff=0.6)
    return (f"network.model: unknown model {model!r}"
            + (f"; did you mean {close[0]!r}?" if close else "")
            + f" (known: {', '.join(registry.model_names())})")


def parse_config(data: Any, source: str | None = None) -> Config:
    """Validate a plain dict (the sections, then the checks across them); raises
    ConfigError listing every problem (`infeasible` when the only problem is a chip that
    cannot hold the network)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"a config is a mapping of sections, got {type(data).__name__}"], source)
    if "version" not in data:
        raise ConfigError(["version: missing; add 'version: 1' at the top"], source)
    unknown = _known_model(data)
    if unknown:
        raise ConfigError([unknown], source)
    try:
        cfg = config_model().model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_format(e, data) for e in exc.errors()], source) from None
    problems, infeasible = cross_checks(cfg)
    if problems or infeasible:
        raise ConfigError(problems + infeasible, source, infeasible=not problems)
    return cfg


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as YAML, so typed) to a nested dict."""
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. network.n_excitatory=400")
            continue
        try:
            value = read_yaml(raw, None) if raw.strip() else None
        except ConfigError as exc:
            problems.append(f"--set {key}: {exc.problems[0]}")
            continue
        # a numeric part is a numeric key, as YAML reads it in a file (e.g. a table by tiles)
        parts = [int(x) if x.isdigit() else x for x in key.split(".")]
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f"--set {key}: {'.'.join(map(str, parts[:depth + 1]))} is not a "
                                "section")
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise ConfigError(problems)
    return data


_REFS = {"hardware": "chips", "energy": "energy"}

def _fill(data: dict, defaults: dict) -> None:
    for key, value in defaults.items():
        if isinstance(value, dict):
            node = data.get(key)
            if node is None:
                node = data[key] = {}
            if isinstance(node, dict):
                _fill(node, value)
        elif key not in data:
            data[key] = value


def apply_model_defaults(data: dict) -> dict:
    """Fill in the chosen `network.model` and its family's defaults where the config is
    silent (the model itself, its learning rule, and what the family sets for it)."""
    net = data.get("network")
    if net is None:
        net = data["network"] = {}
    if not isinstance(net, dict):
        return data
    model = net.setdefault("model", registry.DEFAULT_MODEL)
    if not isinstance(model, str) or model not in registry.model_names():
        return data
    family = registry.family_of(model)
    rule = family.learning_config.model_fields["rule"].default
    _fill(data, {"learning": {"rule": rule}})
    _fill(data, family.defaults(model))
    return data


def _shipped(folder: str) -> Path | None:
    try:
        from importlib.resources import files

        p = Path(str(files("accel_sim.presets"))) / folder
        return p if p.is_dir() else None
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        return None


def shipped_config(name: str) -> Path:
    """A shipped config file (`configs/<name>`, installed as accel_sim.presets)."""
    root = _shipped(".")
    path = root / name if root is not None else None
    if path is None or not path.is_file():
        raise ConfigError([f"{name}: not a shipped config"])
    return path


def _resolve_refs(data: dict, base: Path | None) -> list[str]:
    """Replace `hardware: NAME` / `energy: NAME` (or a file path) by the file's contents."""
    problems = []
    for section, folder in _REFS.items():
        ref = data.get(section)
        if not isinstance(ref, str):
            continue
        name = ref if ref.endswith((".yaml", ".yml")) else ref + ".yaml"
        roots = [r for r in (base, Path.cwd()) if r is not None]
        candidates = [r / name for r in roots] + [r / folder / name for r in roots]
        shipped = _shipped(folder)
        if shipped is not None:
            candidates.append(shipped / name)
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            known = preset_names(section)
            close = difflib.get_close_matches(ref, known, n=1, cutoff=0.6)
            problems.append(f"{section}: no {folder[:-1] if folder == 'chips' else 'energy'} "
                            f"file {ref!r} (looked in {', '.join(str(c.parent) for c in candidates)})"
                            + (f"; did you mean {close[0]!r}?" if close else "")
                            + (f"; shipped: {', '.join(known)}" if known else ""))
            continue
        try:
            content = read_yaml(found.read_text(encoding="utf-8"), str(found))
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        kind = file_kind(content)
        if kind != section:
            problems.append(f"{section}: {found} is {_KIND_NAMES.get(kind, 'not a mapping')}, "
                            f"not {_KIND_NAMES[section]}"
                            + (f"; shipped: {', '.join(preset_names(section))}"
                               if preset_names(section) else ""))
            continue
        data[section] = content
    return problems


_KIND_NAMES = {"config": "a run config", "sweep": "a sweep file", "search": "a search file",
               "hardware": "a chip (hardware) file", "energy": "an energy table"}


_KIND_HINTS = {"sweep": ": run it with `accel-sim sweep {path}`",
               "search": ": run it with `accel-sim search {path}`",
               "hardware": ": name it in a config's `hardware` (e.g. hardware: {path})",
               "energy": ": name it in a config's `energy` (e.g. energy: {path})"}


def file_kind(data: Any) -> str | None:
    """What a YAML file holds, from its top-level keys: `config` (a run), `sweep`,
    `search`, `hardware` (a chip) or `energy` (a table); None if it is not a mapping."""
    if not isinstance(data, dict):
        return None
    if "budgets" in data or "calibrate_samples" in data:
        return "search"
    if "base" in data:
        return "sweep"
    if "components" in data:
        return "energy"
    if {"cores", "sram", "dram", "noc", "sync", "clock_mhz"} & set(data):
        return "hardware"
    return "config"


def preset_names(section: str) -> list[str]:
    """The shipped chips (`hardware`) or energy tables (`energy`)."""
    shipped = _shipped(_REFS[section])
    return sorted(p.stem for p in shipped.glob("*.yaml")) if shipped else []


def _mark_modified(data: dict, overrides: Iterable[str]) -> None:
    """A chip or table whose keys --set changed is no longer the preset it names."""
    for section in _REFS:
        node = data.get(section)
        changed = any(o.partition("=")[0].strip().startswith(section + ".") for o in overrides)
        if changed and isinstance(node, dict) and isinstance(node.get("name"), str) and (
                not node["name"].endswith(MODIFIED)):
            node["name"] += MODIFIED


def load_section(section: str, ref: Any, overrides: Iterable[str] = ()):
    """One `hardware` or `energy` section on its own: a shipped name, a file, or a dict;
    `overrides` are relative to it (`noc.cast=unicast`). Raises ConfigError with dotted
    paths and "did you mean" like load_config."""
    from .energy import EnergyTableConfig
    from .hardware import HardwareConfig

    model = {"hardware": HardwareConfig, "energy": EnergyTableConfig}[section]
    if isinstance(ref, model):
        ref = config_to_dict(ref)
    data: dict = {section: dict(ref) if isinstance(ref, dict) else str(ref)}
    problems = _resolve_refs(data, None)
    full = [f"{section}.{o}" for o in overrides]
    if not problems:
        try:
            apply_overrides(data, full)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    _mark_modified(data, full)
    try:
        return model.model_validate(data[section])
    except ValidationError as exc:
        raise ConfigError([_format(dict(e, loc=(section,) + tuple(e["loc"])))
                           for e in exc.errors()]) from None


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> Config:
    """Load a YAML config file (None: all defaults), apply overrides and validate."""
    return _load(path, overrides, resolved=False)


def load_resolved(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """A run directory's `config.resolved.yaml`. Those written before the network and
    learning sections belonged to their family hold every family's keys (with their
    defaults): the keys the run's family does not have are dropped."""
    return _load(path, overrides, resolved=True)


def _drop_foreign(data: dict) -> None:
    """Keep in `network` and `learning` only the keys of the family's own sections."""
    for section in _UNIONS:
        node, model = data.get(section), _family_section(section, data)
        if section == "learning" and model is None and isinstance(data.get("network"), dict):
            try:  # an old inference-only run: its learning section was the STDP one
                family = registry.family_of(data["network"].get("model", registry.DEFAULT_MODEL))
            except ConfigError:
                continue
            model = family.learning_config
            node = data[section] = {"rule": model.model_fields["rule"].default}
        if isinstance(node, dict) and model is not None:
            data[section] = {k: v for k, v in node.items() if k in model.model_fields}


def _load(path, overrides: Iterable[str], *, resolved: bool) -> Config:
    source = str(path) if path is not None else None
    data: Any = {"version": 1}
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise ConfigError([f"{p} is a folder; give a config file in it, e.g. "
                               f"{next(iter(sorted(p.glob('*.yaml'))), p / 'config.yaml')}"])
        if not p.is_file():
            raise ConfigError([f"config file not found: {p}"])
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"cannot read config: {exc}"], source) from None
        data, duplicates = _read_yaml(text, source)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError([f"a config is a mapping of sections, got {type(data).__name__}"], source)
        kind = file_kind(data)
        if kind != "config":
            raise ConfigError([f"this is {_KIND_NAMES[kind]}, not a run config"
                               + _KIND_HINTS.get(kind, "").format(path=p)], source)
        if resolved:
            _drop_foreign(data)
    else:
        duplicates = []
    base = Path(path).resolve().parent if path is not None else None
    refs = _resolve_refs(data, base)
    problems = []
    for item in overrides:  # one by one: `hardware=edge` then `hardware.sram.size_kib=64`
        try:
            apply_overrides(data, [item])
        except ConfigError as exc:
            problems.extend(exc.problems)
        refs += _resolve_refs(data, base)
    if problems:
        raise ConfigError(problems, source)
    if refs:
        raise ConfigError(duplicates + refs, source)
    _mark_modified(data, overrides)
    apply_model_defaults(data)
    try:
        cfg = parse_config(data, source)
    except ConfigError as exc:
        raise ConfigError(duplicates + exc.problems, source,
                          infeasible=exc.infeasible and not duplicates) from None
    if duplicates:
        raise ConfigError(duplicates, source)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    """Plain data (dicts, lists, scalars); numeric mapping keys stay numbers (a JSON dump
    would turn them into strings, which the strict loader then refuses)."""
    return _plain(cfg.model_dump(mode="python"))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML (all defaults filled in), loadable again."""
    return yaml.dump(config_to_dict(cfg), Dumper=_StrictDumper, sort_keys=False,
                     default_flow_style=False, width=100)
