"""The AudioSet ontology (asset ``audioset_ontology``): class hierarchy and restrictions.

ontology.json lists 632 classes with ``id``, ``name``, ``child_ids`` and
``restrictions`` (``abstract``: a grouping node no clip is labelled with, so the
tagger has no output for it; ``blacklist``: a class AudioSet left out as
ambiguous). The tagger's 527 outputs are a subset. The hierarchy is a DAG (a
class may have several parents: "Tick" sits under both "Clock" and
"Clicking"); a cycle means a malformed file and is rejected at load time.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import assets
from .errors import AssetError, ConfigError

ASSET = "audioset_ontology"


@dataclass(frozen=True)
class OntologyClass:
    id: str
    name: str
    child_ids: tuple[str, ...]
    abstract: bool
    blacklisted: bool


class Ontology:
    def __init__(self, classes: list[OntologyClass], source: str = "<memory>"):
        self.source = source
        self.by_id = {c.id: c for c in classes}
        self.by_name: dict[str, OntologyClass] = {}
        for c in classes:
            if c.name in self.by_name:
                raise AssetError(f"{source}: class name {c.name!r} appears twice ({self.by_name[c.name].id}, {c.id})")
            self.by_name[c.name] = c
        for c in classes:
            missing = [k for k in c.child_ids if k not in self.by_id]
            if missing:
                raise AssetError(f"{source}: class {c.name!r} lists unknown child ids {missing}")
        self._check_acyclic()
        self.parents: dict[str, list[str]] = {c.id: [] for c in classes}
        for c in classes:
            for k in c.child_ids:
                self.parents[k].append(c.id)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, assets_dir: str | os.PathLike | None = None) -> "Ontology":
        """From ``path``, else the verified ``audioset_ontology`` asset."""
        path = Path(path) if path else assets.resolve(ASSET, assets_dir)
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AssetError(f"AudioSet ontology not found: {path} (run `avs assets fetch {ASSET}`)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AssetError(f"AudioSet ontology {path} is not readable JSON: {exc}") from None
        if not isinstance(raw, list) or not raw:
            raise AssetError(f"AudioSet ontology {path}: expected a non-empty JSON list of classes")
        classes = []
        for i, entry in enumerate(raw):
            try:
                restrictions = entry.get("restrictions") or []
                classes.append(OntologyClass(str(entry["id"]), str(entry["name"]), tuple(entry.get("child_ids") or ()),
                                             "abstract" in restrictions, "blacklist" in restrictions))
            except (AttributeError, KeyError, TypeError) as exc:
                raise AssetError(f"AudioSet ontology {path}: entry {i} lacks id/name ({exc!r})") from None
        return cls(classes, str(path))

    def _check_acyclic(self) -> None:
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in self.by_id:
            if root in state:
                continue
            stack = [(root, iter(self.by_id[root].child_ids))]
            path = [root]
            state[root] = 1
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    state[node] = 2
                    stack.pop()
                    path.pop()
                elif state.get(child) == 1:
                    cycle = path[path.index(child):] + [child]
                    raise AssetError(f"{self.source}: cycle in child_ids: "
                                     + " -> ".join(self.by_id[k].name for k in cycle))
                elif child not in state:
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(self.by_id[child].child_ids)))

    def get(self, name: str, where: str = "") -> OntologyClass:
        """The class called ``name``; a ConfigError naming ``where`` and close matches otherwise."""
        try:
            return self.by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.by_name, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ConfigError(f"{where}{': ' if where else ''}{name!r} is not an AudioSet ontology class{hint}") from None

    def subtree(self, name: str) -> list[str]:
        """Names of ``name`` and all its descendants (each once), minus blacklisted classes
        (their own children still count: "Domestic sounds, home sounds" is blacklisted, "Toilet flush" is not)."""
        seen: set[str] = set()
        out: list[str] = []
        stack = [self.get(name).id]
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            c = self.by_id[cid]
            if not c.blacklisted or c.name == name:
                out.append(c.name)
            stack.extend(reversed(c.child_ids))
        return out

    def ancestors(self, name: str) -> set[str]:
        """Names of all proper ancestors of ``name``."""
        out: set[str] = set()
        stack = list(self.parents[self.get(name).id])
        while stack:
            cid = stack.pop()
            if self.by_id[cid].name not in out:
                out.add(self.by_id[cid].name)
                stack.extend(self.parents[cid])
        return out
