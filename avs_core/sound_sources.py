"""The semantic bridge from AudioSet sounds to visible object classes (config/sound_sources.yaml).

Evidence is read along the AudioSet ontology (:mod:`avs_core.ontology`):

* a **concept** (a visible object class: VOC and/or COCO name) owns the tagger
  classes of the ontology subtrees its entry names ("Dog" brings Bark, Yip,
  Howl, ...), minus the ``exclude`` subtrees;
* a **generic** node ("Vehicle", "Animal", "Siren") covers every concept with a
  class inside its subtree;
* a score over a set of tagger classes combines their calibrated evidence
  (``aggregate``: ``noisy_or`` or ``max``; calibration: a class's probability
  counts only above ``evidence_floor``, rescaled to [0, 1]; see ``calibrate``).

:meth:`SoundSourceMap.hear` turns one window's tagger probabilities into what is
heard: the concepts heard specifically, the generic nodes that select their
covered concepts because nothing more specific is heard, and the most specific
heard sounds (for ``heard_not_visible``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from .config import CONFIG_DIR
from .errors import ConfigError
from .ontology import Ontology

DEFAULT_PATH = CONFIG_DIR / "sound_sources.yaml"
AGGREGATES = ("noisy_or", "max")


@dataclass(frozen=True)
class Concept:
    name: str
    voc: str | None
    coco: str | None
    classes: tuple[str, ...]          # tagger classes owned (ontology subtrees of the entry)
    audio_indices: tuple[int, ...]    # their tagger output indices
    threshold: float | None


@dataclass(frozen=True)
class Generic:
    name: str                         # the root, or "A / B" for a union of roots
    roots: tuple[str, ...]            # one ontology node, or several whose evidence is one ("Siren", "Emergency vehicle")
    audio_indices: tuple[int, ...]    # every tagger class of the subtree(s)
    below: frozenset[str]             # tagger classes strictly below the root(s)
    covers: tuple[str, ...]           # concepts with a class in the subtree(s)


@dataclass
class Hearing:
    """What one window's audio says (scores are calibrated concept / node scores)."""

    evidence: np.ndarray  # calibrated evidence per tagger class
    specific: list[tuple[Concept, float]] = field(default_factory=list)
    # Generic nodes that select concepts (nothing more specific heard): (node, score, the ontology
    # node its evidence leads to, the concepts covered there).
    generic: list[tuple[Generic, float, str, list[Concept]]] = field(default_factory=list)
    # Most specific heard tagger classes (no heard descendant), best first, with the evidence of
    # the class and its direct children combined.
    sounds: list[tuple[str, float]] = field(default_factory=list)


def calibrate(probs: np.ndarray, floor: float) -> np.ndarray:
    """Tagger probability -> evidence: 0 up to ``floor`` (the level untrained-for sounds reach),
    linear to 1 above. Without it noisy-OR over a concept's many classes adds up noise."""
    return np.clip((np.asarray(probs, np.float64) - floor) / (1.0 - floor), 0.0, 1.0)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice (PyYAML silently keeps the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"duplicate entry {key!r} (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _read(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except FileNotFoundError:
        raise ConfigError(f"sound-source bridge not found: {path}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at top level")
    return data


def _names(value, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of AudioSet class names, got {value!r}")
    return value


class SoundSourceMap:
    """Scores visual concepts and generic AudioSet nodes from tagger probabilities."""

    def __init__(self, labels: Sequence[str], ontology: Ontology, concepts: Sequence[Concept],
                 generic: Sequence[Generic], not_sources: frozenset[str], aggregate: str = "noisy_or",
                 evidence_floor: float = 0.05, generic_descend: float = 0.25):
        if aggregate not in AGGREGATES:
            raise ConfigError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        self.labels, self.ontology = list(labels), ontology
        self.concepts, self.generic = list(concepts), list(generic)
        self.not_sources = not_sources
        for key, value in (("evidence_floor", evidence_floor), ("generic_descend", generic_descend)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"{key} must be a number in [0, 1), got {value!r}")
        self.aggregate, self.evidence_floor = aggregate, float(evidence_floor)
        self.generic_descend = float(generic_descend)
        self._index = {label: i for i, label in enumerate(self.labels)}
        self._trees: dict[str, frozenset[str]] = {}
        self._below = {lab: frozenset(ontology.subtree(lab)[1:]) & set(self.labels) for lab in self.labels}
        # Naming reads each class together with its direct children: the tagger spreads one sound
        # over siblings (Tick + Tick-tock, Church bell + Change ringing), which then name their
        # parent (Clock, Bell). One level only: whole subtrees (Music: ~200 classes) add up noise.
        self._family = np.zeros((len(self.labels), len(self.labels)))
        for i, lab in enumerate(self.labels):
            self._family[i, i] = 1.0
            for cid in ontology.get(lab).child_ids:
                child = ontology.by_id[cid].name
                if child in self._index:
                    self._family[i, self._index[child]] = 1.0

    @classmethod
    def load(cls, audio_labels: Sequence[str], path: str | Path | None = None,
             voc_classes: Sequence[str] = (), coco_classes: Sequence[str] = (),
             ontology: Ontology | None = None) -> "SoundSourceMap":
        path = Path(path) if path else DEFAULT_PATH
        onto = ontology or Ontology.load()
        raw = _read(path)
        unknown = set(raw) - {"concepts", "generic", "not_sources", "aggregate", "evidence_floor", "generic_descend"}
        if unknown:
            raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (valid: concepts, generic, not_sources, "
                              "aggregate, evidence_floor, generic_descend)")
        outputs = {label: i for i, label in enumerate(audio_labels)}
        missing = [label for label in audio_labels if label not in onto.by_name]
        if missing:
            raise ConfigError(f"tagger classes missing from the ontology {onto.source}: {missing[:5]}")

        def classes_of(roots: list[str], excludes: list[str], where: str) -> list[str]:
            dropped = {n for e in excludes for n in onto.subtree(onto.get(e, f"{where}.exclude").name)}
            out: list[str] = []
            for root in roots:
                found = [n for n in onto.subtree(onto.get(root, where).name) if n in outputs and n not in dropped]
                if not found:
                    raise ConfigError(f"{path}: {where}: {root!r} has no class the tagger outputs")
                out += [n for n in found if n not in out]
            return out

        entries = raw.get("concepts")
        if not isinstance(entries, dict) or not entries:
            raise ConfigError(f"{path}: expected a non-empty 'concepts' mapping")
        concepts, claimed = [], {}
        for name, entry in entries.items():
            where = f"{path}: concept {name!r}"
            if not isinstance(entry, dict) or not entry.get("audioset"):
                raise ConfigError(f"{where} needs an 'audioset' list")
            unknown_keys = set(entry) - {"voc", "coco", "audioset", "exclude", "threshold"}
            if unknown_keys:
                raise ConfigError(f"{where}: unknown keys {sorted(unknown_keys)} (valid: voc, coco, audioset, exclude, threshold)")
            voc, coco = entry.get("voc"), entry.get("coco")
            if voc is None and coco is None:
                raise ConfigError(f"{where} needs a 'voc' or 'coco' class")
            for vocab, cls_name, known in (("voc", voc, voc_classes), ("coco", coco, coco_classes)):
                if cls_name is None:
                    continue
                if known and cls_name not in known:
                    raise ConfigError(f"{where}: {cls_name!r} is not a {vocab.upper()} class")
                if (vocab, cls_name) in claimed:
                    raise ConfigError(f"{where}: duplicate concept: {vocab} class {cls_name!r} is already "
                                      f"the concept {claimed[vocab, cls_name]!r}")
                claimed[vocab, cls_name] = name
            owned = classes_of(_names(entry["audioset"], f"{where}.audioset"),
                               _names(entry.get("exclude"), f"{where}.exclude"), f"concept {name!r}")
            thr = entry.get("threshold")
            if thr is not None and (isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 <= thr <= 1):
                raise ConfigError(f"{where}: threshold must be a number in [0, 1], got {thr!r}")
            concepts.append(Concept(str(name), voc, coco, tuple(owned), tuple(outputs[n] for n in owned),
                                    None if thr is None else float(thr)))

        generic = []
        entries = raw.get("generic") or []
        if not isinstance(entries, list):
            raise ConfigError(f"{path}: generic must be a list of AudioSet names (or lists of names), got {entries!r}")
        for item in entries:
            roots = [item] if isinstance(item, str) else _names(item, f"{path}: generic entry {item!r}")
            name = " / ".join(roots)
            where = f"{path}: generic {name!r}"
            if not roots:
                raise ConfigError(f"{where}: an empty list")
            owners = [c.name for c in concepts if set(roots) & set(c.classes)]
            if owners:
                # Both a concept's own evidence and a generic selector: the rule would loop on itself.
                raise ConfigError(f"{where} is also a class of concept(s) {owners}; name it in one place only")
            tree = classes_of(roots, [], f"generic {name!r}")
            covers = tuple(c.name for c in concepts if set(c.classes) & set(tree))
            if not covers:
                raise ConfigError(f"{where} covers no concept: no concept owns a class below it")
            generic.append(Generic(name, tuple(roots), tuple(outputs[n] for n in tree),
                                   frozenset(tree) - set(roots), covers))
        if len({g.name for g in generic}) != len(generic):
            raise ConfigError(f"{path}: a generic node is listed twice")
        not_sources = frozenset(n for root in _names(raw.get("not_sources"), f"{path}: not_sources")
                                for n in onto.subtree(onto.get(root, f"{path}: not_sources").name))
        return cls(audio_labels, onto, concepts, generic, not_sources,
                   raw.get("aggregate", "noisy_or"), raw.get("evidence_floor", 0.05), raw.get("generic_descend", 0.25))

    def score(self, evidence: np.ndarray, indices: Sequence[int]) -> float:
        """Combined evidence of a set of tagger classes (``evidence`` = ``calibrate(probs)``)."""
        e = evidence[list(indices)]
        if self.aggregate == "max":
            return float(e.max(initial=0.0))
        return float(1.0 - np.prod(1.0 - e))

    def hear(self, probs: np.ndarray, threshold: float) -> Hearing:
        """Everything heard at ``threshold`` (concepts may override it with their own)."""
        evidence = calibrate(probs, self.evidence_floor)
        out = Hearing(evidence)
        for c in self.concepts:
            s = self.score(evidence, c.audio_indices)
            if s >= (c.threshold if c.threshold is not None else threshold):
                out.specific.append((c, s))
        out.specific.sort(key=lambda cs: -cs[1])
        heard_concepts = {c.name for c, _ in out.specific}
        family = self._family_scores(evidence)
        heard_classes = {self.labels[i] for i in np.flatnonzero(family >= threshold)}
        generic_scores = {g.name: self.score(evidence, g.audio_indices) for g in self.generic}
        heard_generic = [g for g in self.generic if generic_scores[g.name] >= threshold]
        by_name = {c.name: c for c in self.concepts}
        for g in heard_generic:
            # Specific beats generic: a heard concept or generic node below this one decides instead.
            if heard_concepts & set(g.covers) or any(h is not g and set(h.roots) & g.below for h in heard_generic):
                continue
            target, descended = self._descend(g.roots, evidence, self.generic_descend * threshold)
            covers = [by_name[n] for n in g.covers]
            if descended:
                # The concept that owns the node reached ("Dog" -> dog), not one sharing a class
                # below it ("Growling" is also a cat sound); else every concept below it.
                covers = ([c for c in covers if target in c.classes]
                          or [c for c in covers if set(c.classes) & self._tree(target)])
            out.generic.append((g, generic_scores[g.name], target, covers))
        out.generic.sort(key=lambda gs: -gs[1])
        sounds = [n for n in heard_classes if n not in self.not_sources and not (self._below[n] & heard_classes)]
        out.sounds = sorted(((n, float(family[self._index[n]])) for n in sounds), key=lambda ns: -ns[1])
        return out

    def _family_scores(self, evidence: np.ndarray) -> np.ndarray:
        """Per tagger class, the aggregate of its own and its direct children's evidence."""
        if self.aggregate == "max":
            return (self._family * evidence[None, :]).max(axis=1)
        return 1.0 - np.exp(self._family @ np.log1p(-np.minimum(evidence, 1.0 - 1e-12)))

    def _tree(self, name: str) -> frozenset[str]:
        if name not in self._trees:
            self._trees[name] = frozenset(self.ontology.subtree(name)) & frozenset(self.labels)
        return self._trees[name]

    def _subtree_score(self, name: str, evidence: np.ndarray) -> float:
        tree = self._tree(name)
        return self.score(evidence, [self._index[n] for n in tree]) if tree else 0.0

    def _descend(self, roots: Sequence[str], evidence: np.ndarray, min_evidence: float) -> tuple[str, bool]:
        """Follow generic evidence down the ontology: while a child subtree holds at least
        ``min_evidence`` (> 0), move to the strongest child ("Vehicle" with aircraft sounds below the
        threshold leads to "Aircraft", not to the cars in view). Returns the node reached (the
        strongest root when it stays at a union) and whether it moved."""
        nodes, moved = list(roots), False
        while True:
            best, best_score = None, max(min_evidence, 1e-9)
            for node in nodes:
                for cid in self.ontology.get(node).child_ids:
                    child = self.ontology.by_id[cid].name
                    score = self._subtree_score(child, evidence)
                    if score >= best_score:
                        best, best_score = child, score
            if best is None:
                return max(nodes, key=lambda n: self._subtree_score(n, evidence)), moved
            nodes, moved = [best], True

    def explains(self, sound: str, concept: Concept) -> bool:
        """Whether ``concept`` sounding accounts for the heard class ``sound``: the sound is one of
        its classes or an ancestor of one ("Domestic animals, pets" for the dog)."""
        return sound in concept.classes or bool(self._below.get(sound, frozenset()) & set(concept.classes))
