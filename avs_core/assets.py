"""Pretrained models and media by logical name: the manifest, where files are looked for, verification.

``asset_manifest.json`` (package data) is the single record of every asset the code
can load: folder, file, size, sha256, licence and the public origin URL pinned to a
commit. A file is used only when its sha256 matches the manifest.

Run-time search order (first folder holding the file wins):

1. the ``assets_dir`` config key (the ``root`` argument),
2. the user cache: ``$AVS_ASSETS_DIR``, else ``$XDG_CACHE_HOME/avs/assets``, else
   ``~/.cache/avs/assets`` (where ``avs assets fetch`` writes),
3. ``../shared/assets`` beside a source checkout (only when avs runs from one).

Nothing is downloaded at run time unless auto-fetch is on (``configure(auto_fetch=True)``,
the ``assets.auto_fetch`` config key, or ``AVS_ASSETS_AUTO_FETCH=1``): a robot
starts the same way offline every time, and a missing file is an AssetError that
says what is missing, where it was looked for and how to fetch it.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping

from .errors import AssetError

ENV_VAR = "AVS_ASSETS_DIR"
AUTO_FETCH_ENV = "AVS_ASSETS_AUTO_FETCH"
MANIFEST_FILE = "asset_manifest.json"
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Asset:
    """One manifest entry."""

    name: str
    folder: str
    file: str
    size: int
    sha256: str
    license: str
    url: str  # https://github.com/OWNER/REPO/raw/COMMIT/PATH
    repository: str
    commit: str
    path: str  # path in the origin repository

    @property
    def relpath(self) -> str:
        """Location inside an assets folder or mirror: FOLDER/FILE."""
        return f"{self.folder}/{self.file}"


def _load_manifest() -> dict[str, Asset]:
    data = json.loads(resources.files(__package__).joinpath(MANIFEST_FILE).read_text(encoding="utf-8"))
    return {name: Asset(name=name, **entry) for name, entry in data["assets"].items()}


MANIFEST: dict[str, Asset] = _load_manifest()
# Logical name -> (folder, file), the shape older callers use.
ASSETS: dict[str, tuple[str, str]] = {name: (a.folder, a.file) for name, a in MANIFEST.items()}

_policy = {"auto_fetch": False, "mirror": None}


def configure(auto_fetch: bool | None = None, mirror: str | None = None) -> None:
    """Process-wide fetch policy from the ``assets`` config section (``auto_fetch``, ``mirror``)."""
    if auto_fetch is not None:
        _policy["auto_fetch"] = bool(auto_fetch)
    if mirror is not None:
        _policy["mirror"] = mirror or None


def configure_from(cfg: Mapping | None) -> None:
    """The policy of a whole config's ``assets`` section; keys it leaves out reset to the defaults."""
    section = dict((cfg or {}).get("assets") or {})
    unknown = set(section) - {"auto_fetch", "mirror"}
    if unknown:
        raise AssetError(f"unknown key(s) in the 'assets' config section: {', '.join(sorted(unknown))} (known: auto_fetch, mirror)")
    _policy.update(auto_fetch=bool(section.get("auto_fetch", False)), mirror=section.get("mirror") or None)


def _auto_fetch_enabled() -> bool:
    env = os.environ.get(AUTO_FETCH_ENV, "").strip().lower()
    return _policy["auto_fetch"] or env in ("1", "true", "yes")


def get(name: str) -> Asset:
    if name not in MANIFEST:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(sorted(MANIFEST))}")
    return MANIFEST[name]


def cache_dir() -> Path:
    """Where ``avs assets fetch`` writes: $AVS_ASSETS_DIR, else $XDG_CACHE_HOME/avs/assets, else ~/.cache/avs/assets."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "avs" / "assets").resolve()


def checkout_mirror() -> Path | None:
    """``../shared/assets`` beside a source checkout, or None when avs is installed (wheel, colcon)."""
    if not (_REPO_ROOT / "setup.py").is_file():
        return None
    return (_REPO_ROOT.parent / "shared" / "assets").resolve()


def search_path(configured: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """(label, folder) in the order files are looked for."""
    out = []
    if configured:
        out.append(("config assets_dir", Path(configured).expanduser().resolve()))
    out.append((f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "user cache", cache_dir()))
    mirror = checkout_mirror()
    if mirror is not None:
        out.append(("../shared/assets beside the checkout", mirror))
    seen, unique = set(), []
    for label, folder in out:
        if folder not in seen:
            seen.add(folder)
            unique.append((label, folder))
    return unique


@lru_cache(maxsize=256)
def _sha256(path: Path, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised on (path, mtime, size) so repeated resolves do not re-read it."""
    st = path.stat()
    return _sha256(path, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class AssetStatus:
    name: str
    path: Path  # the file found, else where it would be in the first folder searched
    present: bool
    verified: bool
    expected_sha256: str
    actual_sha256: str | None
    searched: tuple[tuple[str, Path], ...]  # (label, folder) in search order


def status(name: str, root: str | os.PathLike | None = None) -> AssetStatus:
    asset = get(name)
    searched = tuple(search_path(root))
    for _, folder in searched:
        path = folder / asset.folder / asset.file
        if path.is_file():
            actual = file_sha256(path)
            return AssetStatus(name, path, True, actual == asset.sha256, asset.sha256, actual, searched)
    return AssetStatus(name, searched[0][1] / asset.folder / asset.file, False, False, asset.sha256, None, searched)


def fetch_command(name: str) -> str:
    return f"avs assets fetch {name}"


def missing_message(st: AssetStatus) -> str:
    asset = MANIFEST[st.name]
    looked = "; ".join(f"{i}. {folder / asset.folder / asset.file} ({label})" for i, (label, folder) in enumerate(st.searched, 1))
    return (f"asset {st.name!r} ({asset.relpath}) not found. Looked in: {looked}. "
            f"Fetch it with `{fetch_command(st.name)}` (or `avs assets fetch --all`; add --from DIR_OR_URL for a mirror), "
            f"or download {asset.url} to {cache_dir() / asset.relpath} (sha256 {asset.sha256}); "
            f"set ${ENV_VAR} or the 'assets_dir' config key to use another folder")


def mismatch_message(st: AssetStatus) -> str:
    return (f"asset {st.name!r} at {st.path} fails its sha256 check: expected {st.expected_sha256}, "
            f"got {st.actual_sha256}; the file is not used. Delete it and run `{fetch_command(st.name)}` "
            f"(origin {MANIFEST[st.name].url})")


def resolve(name: str, root: str | os.PathLike | None = None, *, auto_fetch: bool | None = None) -> Path:
    """Path of a verified asset, or an AssetError naming it, every folder searched, its URL and the fix.

    ``auto_fetch`` (default: the configured policy) fetches a missing file into the user
    cache from the configured mirror or the pinned origin URL.
    """
    st = status(name, root)
    if st.present:
        if not st.verified:
            raise AssetError(mismatch_message(st))
        return st.path
    if not (_auto_fetch_enabled() if auto_fetch is None else auto_fetch):
        raise AssetError(missing_message(st))
    from .asset_fetch import fetch  # only reached when the user opted in to downloads

    return fetch(MANIFEST[name], cache_dir(), _policy["mirror"])
