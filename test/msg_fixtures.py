"""The test fixture interface packages (scripts/build_test_msgs.sh) and how a process selects them.

``.test_msgs/<variant>`` are install prefixes built from ``test/fixtures/msgs``:
``ros_drivers`` and ``mgonzs13`` each hold a package named ``audio_common_msgs`` (with
different messages, as on real robots), ``vision`` holds ``vision_msgs``. One process
can import only one ``audio_common_msgs``: the test process uses ``ros_drivers``
(``activated``), child processes get either through ``env``.
"""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def activated(audio_variant: str = "ros_drivers"):
    """Import the fixture packages in this process while the context lasts.

    Only ``sys.path`` changes (never ``os.environ``: child nodes of other tests must keep
    their own environment), and on exit audio_common_msgs is forgotten again, so tests that
    run later in the session see none. vision_msgs stays: subscriptions created inside the
    context keep deserializing it (rosidl re-imports its modules by name) and it has only one
    variant. rosidl loads each package's typesupport
    libraries by bare file name; the dynamic linker read LD_LIBRARY_PATH when this process
    started, so they are loaded here first and later loads by the same name find them. One
    process can hold only one variant's libraries: the other runs in a child (``env``).
    """
    from avs_ros import audio_transport

    libs = [lib for d in _paths(audio_variant)["LD_LIBRARY_PATH"] for lib in sorted(Path(d).glob("lib*.so"))]
    loaded = getattr(activated, "_variant", None)
    if loaded not in (None, audio_variant):
        raise RuntimeError(f"this process already loaded the {loaded} audio_common_msgs libraries")
    activated._variant = audio_variant
    for lib in libs:
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    paths = _paths(audio_variant)["PYTHONPATH"]
    sys.path[:0] = [p for p in paths if p not in sys.path]
    audio_transport.audio_msgs.cache_clear()
    try:
        yield audio_transport.audio_msgs()
    finally:
        sys.path.remove(paths[0])  # the audio variant's prefix (vision's is paths[1])
        for name in [m for m in sys.modules if m.split(".")[0] == "audio_common_msgs"]:
            del sys.modules[name]
        audio_transport.audio_msgs.cache_clear()
