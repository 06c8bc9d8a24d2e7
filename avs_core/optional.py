"""Import a package where a feature needs it, with an error that names both when it is missing.

Optional and heavy packages are imported at the point of use, never at module import,
so ``import avs_core`` / ``import avs_ros`` work on a machine that lacks them and the
failure says which feature needs which package and how to get it.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import AVSError


class MissingPackageError(AVSError, ImportError):
    """A feature was used whose package is not installed."""


def require(module: str, feature: str, install: str) -> ModuleType:
    """``importlib.import_module(module)``, or MissingPackageError naming the package, the feature and ``install``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingPackageError(f"{feature} needs the Python package {module!r}, which is not importable "
                                  f"({exc}); install it: {install}") from None
