"""YAML configuration: load, deep-merge, and apply ``a.b.c=value`` overrides."""
from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .errors import ConfigError


def _find_config_dir() -> Path:
    """Folder of the default YAML files: package data of ``avs_config`` (importlib.resources).

    ``avs_config`` is the config/ folder mapped by setup.py, so a wheel, an editable
    install and a colcon install resolve it alike. A bare source tree on sys.path (no
    install, or ``colcon build --symlink-install``, whose develop mode skips the mapping)
    reads config/ beside avs_core. ``AVS_CONFIG_DIR`` overrides both.
    """
    if os.environ.get("AVS_CONFIG_DIR"):
        return Path(os.environ["AVS_CONFIG_DIR"]).expanduser().resolve()
    try:
        return Path(str(resources.files("avs_config")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "config"


CONFIG_DIR = _find_config_dir()


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values in ``override`` win."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(cfg: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings; values are parsed as YAML scalars/lists."""
    out = copy.deepcopy(dict(cfg))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
            node = child
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    return out


def get(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node
