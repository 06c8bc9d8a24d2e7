"""The test fixture interface packages (scripts/build_test_msgs.sh) and how a process selects them.

``.test_msgs/<variant>`` are install prefixes built from ``test/fixtures/msgs``:
``ros_drivers`` and ``mgonzs13`` each hold a package named ``audio_common_msgs`` (with
different messages, as on real robots), ``vision`` holds ``vision_msgs``. One process
can import only one ``audio_common_msgs``: the test process uses ``ros_drivers``
(``activate``), child processes get either through ``env``.
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

from conftest import require_package

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = ROOT / ".test_msgs"
AUDIO_VARIANTS = ("ros_drivers", "mgonzs13")
_PY = f"python{sys.version_info.major}.{sys.version_info.minor}"


def _prefixes(audio_variant: str) -> list[Path]:
    if audio_variant not in AUDIO_VARIANTS:
        raise ValueError(f"audio_variant must be one of {AUDIO_VARIANTS}")
    return [PREFIXES / audio_variant, PREFIXES / "vision"]


def _paths(audio_variant: str) -> dict[str, list[str]]:
    prefixes = _prefixes(audio_variant)
    for prefix in prefixes:
        if not (prefix / ".stamp").is_file():
            require_package(f"{prefix.name} fixture messages",
                            f"{prefix} is not built: run scripts/build_test_msgs.sh (scripts/setup.sh does)")
    return {"PYTHONPATH": [str(p / "lib" / _PY / "site-packages") for p in prefixes],
            "LD_LIBRARY_PATH": [str(p / "lib") for p in prefixes],
            "AMENT_PREFIX_PATH": [str(p) for p in prefixes]}


def env(audio_variant: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables that make a child process import ``audio_variant``'s audio_common_msgs + vision_msgs."""
    base = dict(os.environ if base is None else base)
    out = {}
    for name, paths in _paths(audio_variant).items():
        kept = [p for p in base.get(name, "").split(os.pathsep) if p and not p.startswith(str(PREFIXES))]
        out[name] = os.pathsep.join(paths + kept)
    return out


def activate(audio_variant: str = "ros_drivers") -> None:
    """Make this process import the fixture packages (call before anything imports audio_common_msgs).

    rosidl loads each package's typesupport libraries by bare file name at first use; the
    dynamic linker read LD_LIBRARY_PATH when this process started, so the libraries are
    loaded here once and later loads by the same name find them.
    """
    loaded = sys.modules.get("audio_common_msgs")
    wanted = PREFIXES / audio_variant
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(str(wanted)):
        raise RuntimeError(f"audio_common_msgs already imported from {loaded.__file__}, not the {audio_variant} fixture")
    for name, value in env(audio_variant).items():
        os.environ[name] = value
    for path in reversed(_paths(audio_variant)["PYTHONPATH"]):
        if path not in sys.path:
            sys.path.insert(0, path)
    for lib_dir in _paths(audio_variant)["LD_LIBRARY_PATH"]:
        for lib in sorted(Path(lib_dir).glob("lib*.so")):
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
