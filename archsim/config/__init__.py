"""Configuration: YAML loading with line numbers, ``extends:``, ``--set`` overrides and validation errors.

Each package owns the pydantic model of its own YAML section; this package only loads, resolves and reports.
"""

from archsim.config.errors import ConfigError, InputError
from archsim.config.loader import (
    EXTENDS_KEY,
    HWCONFIGS_DIR,
    PRESET_DIR,
    WORKLOADS_DIR,
    LoadedConfig,
    SourceMap,
    apply_override,
    config_error_from_validation,
    config_hash,
    deep_merge,
    dump_resolved,
    find_preset,
    find_shipped,
    format_key_path,
    list_presets,
    list_shipped,
    load_config,
    load_yaml,
    parse_override,
    resolve_source,
    validate,
)

__all__ = [
    "EXTENDS_KEY",
    "HWCONFIGS_DIR",
    "PRESET_DIR",
    "WORKLOADS_DIR",
    "ConfigError",
    "InputError",
    "LoadedConfig",
    "SourceMap",
    "apply_override",
    "config_error_from_validation",
    "config_hash",
    "deep_merge",
    "dump_resolved",
    "find_preset",
    "find_shipped",
    "format_key_path",
    "list_presets",
    "list_shipped",
    "load_config",
    "load_yaml",
    "parse_override",
    "resolve_source",
    "validate",
]
