"""Config loading and validation (see schema.py for every key and default)."""
from .loader import (MODIFIED, ConfigError, apply_overrides, config_to_dict, dump_config,
                     load_config, load_section, parse_config, preset_names, read_yaml)
from .schema import PHASES, Config

__all__ = ["Config", "ConfigError", "PHASES", "load_config", "parse_config", "read_yaml",
           "apply_overrides", "config_to_dict", "dump_config", "load_section", "preset_names",
           "MODIFIED"]
