"""Config loading and validation (schema.py: the shared sections and the generated model;
base.py: what sections are built from; a family's own sections live with the family)."""
from ..errors import ConfigError
from .loader import (
                     MODIFIED,
                     apply_overrides,
                     config_to_dict,
                     dump_config,
                     file_kind,
                     load_config,
                     load_resolved,
                     load_section,
                     parse_config,
                     preset_names,
                     read_yaml,
)
from .schema import EXECUTION_ONLY, PHASES, Config, config_model

__all__ = ["Config", "ConfigError", "EXECUTION_ONLY", "PHASES", "config_model", "load_config",
           "load_resolved", "parse_config", "read_yaml", "apply_overrides", "config_to_dict", "dump_config",
           "load_section", "preset_names", "file_kind", "MODIFIED"]
