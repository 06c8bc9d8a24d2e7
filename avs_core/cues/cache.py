"""Per-dataset cue cache: ``{"<uid>": {"f0": ["guitar", "man"], "f1": [...]}}`` in one JSON file.

Written atomically (temp file + rename) so an interrupted ``make_cues`` run never
leaves a truncated cache; a rerun loads it and skips the frames already done.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import InputError

CueTable = dict[str, dict[str, list[str]]]


def frame_key(index: int) -> str:
    return f"f{int(index)}"


def _validated(data: object, path: Path) -> CueTable:
    if not isinstance(data, dict):
        raise InputError(f"cue cache {path} must hold a JSON object of uid -> frames")
    for uid, frames in data.items():
        if not isinstance(frames, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(t, str) for t in v) for k, v in frames.items()
        ):
            raise InputError(f"cue cache {path}: entry {uid!r} must map frame keys ('f0', ...) to lists of strings")
    return data  # type: ignore[return-value]


class CueCache:
    """In-memory cue table bound to a JSON file."""

    def __init__(self, path: str | os.PathLike, table: CueTable | None = None):
        self.path = Path(path)
        self.table: CueTable = table if table is not None else {}

    @classmethod
    def load(cls, path: str | os.PathLike, missing_ok: bool = True) -> CueCache:
        path = Path(path)
        if not path.exists():
            if missing_ok:
                return cls(path)
            raise InputError(f"cue cache {path} does not exist; create it with training/make_cues.py")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read cue cache {path}: {exc}") from None
        return cls(path, _validated(data, path))

    def get(self, uid: str, frame_index: int) -> list[str] | None:
        return self.table.get(uid, {}).get(frame_key(frame_index))

    def has(self, uid: str, frame_index: int) -> bool:
        return frame_key(frame_index) in self.table.get(uid, {})

    def put(self, uid: str, frame_index: int, texts: Iterable[str]) -> None:
        self.table.setdefault(uid, {})[frame_key(frame_index)] = list(texts)

    def merge(self, other: Mapping[str, Mapping[str, list[str]]]) -> None:
        """Add ``other``'s frames; its entries win where both have a frame."""
        for uid, frames in other.items():
            self.table.setdefault(uid, {}).update({k: list(v) for k, v in frames.items()})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.table, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(len(v) for v in self.table.values())
