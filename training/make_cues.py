#!/usr/bin/env python3
"""Precompute scene text cues for a dataset in the AVSBench-semantic layout.

    python training/make_cues.py --root DATA [--out DATA/cues.json] [--config cfg.yaml] [cues.backend=nouns ...]

Walks ``{label}/{uid}/frames/{k}.jpg|png`` (and ``{label}/{uid}/audio.wav`` for the
audio-tagger backend, second k <-> frame k), runs the configured cue backend in
batches, and writes ``{"<uid>": {"f<k>": [cues...]}}`` — the cache the dataset
loaders read (``cues.json`` in the dataset root by default). Resumable: frames
already in the cache are skipped, and the cache is saved atomically every
``--save-every`` batches, so a killed run loses at most that much work.
Overrides are ``key=value`` on the ``cues`` config section (e.g. ``captioner.path=/models/llava``).
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from avs_core.config import apply_overrides, get, load_yaml  # noqa: E402
from avs_core.cues.cache import CueCache  # noqa: E402
from avs_core.cues.providers import build_cue_provider  # noqa: E402
from avs_core.data.avsbench import read_audio_second  # noqa: E402
from avs_core.errors import AVSError, InputError  # noqa: E402

log = logging.getLogger("make_cues")
FRAME_EXTS = (".jpg", ".jpeg", ".png")


def find_frames(root: Path, split: str | None = None) -> list[tuple[str, int, Path]]:
    """(uid, frame index, image path) for every frame under ``root``, in a stable order."""
    wanted = None
    if split is not None:
        meta = root / "metadata.csv"
        if not meta.is_file():
            raise InputError(f"--split needs {meta}")
        with meta.open(newline="", encoding="utf-8") as fh:
            wanted = {r["uid"] for r in csv.DictReader(fh) if r.get("split") == split}
    items = []
    for frames_dir in sorted(root.glob("*/*/frames")):
        uid = frames_dir.parent.name
        if wanted is not None and uid not in wanted:
            continue
        for img in frames_dir.iterdir():
            if img.suffix.lower() in FRAME_EXTS and img.stem.isdigit():
                items.append((uid, int(img.stem), img))
    items.sort(key=lambda t: (t[0], t[1]))
    return items


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None


def run(root: Path, out: Path, cues_cfg: dict, batch_size: int = 8, split: str | None = None,
        save_every: int = 20, limit: int | None = None) -> CueCache:
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    cache = CueCache.load(out)
    items = find_frames(root, split)
    if not items:
        raise InputError(f"no frames found under {root} (expected {{label}}/{{uid}}/frames/{{k}}.jpg)")
    todo = [it for it in items if not cache.has(it[0], it[1])]
    cached = len(items) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    log.info("%d frames, %d already cached, %d to do -> %s", len(items), cached, len(todo), out)
    if not todo:
        return cache
    provider = build_cue_provider(cues_cfg)
    sources: Counter[str] = Counter()
    skipped = 0
    with tqdm(total=len(todo), unit="frame", desc=f"cues ({provider.source})") as bar:
        for b, start in enumerate(range(0, len(todo), batch_size)):
            batch = todo[start:start + batch_size]
            ok, frames, audios, rates = [], [], [], set()
            for uid, k, img in batch:
                try:
                    frames.append(read_rgb(img) if provider.uses_frames else None)
                    if provider.uses_audio:
                        audio, sr = read_audio_second(img.parent.parent / "audio.wav", k)
                        audios.append(audio)
                        rates.add(sr)
                    else:
                        audios.append(None)
                    ok.append((uid, k))
                except InputError as exc:
                    skipped += 1  # left out of the cache, so a rerun retries it
                    log.warning("skipping %s frame %d: %s", uid, k, exc)
            if len(rates) > 1:
                raise InputError(f"clips in one batch have different sample rates {sorted(rates)}; use --batch-size 1")
            if ok:
                results = provider.compute_batch(frames, audios, rates.pop() if rates else None, [float(k) for _, k in ok])
                for (uid, k), cues in zip(ok, results):
                    cache.put(uid, k, cues.texts)
                    sources[cues.source] += 1
            bar.update(len(batch))
            if (b + 1) % save_every == 0:
                cache.save()
    cache.save()
    log.info("wrote %s: %d frames cached; this run by source: %s; skipped %d",
             out, len(cache), dict(sources), skipped)
    return cache


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, type=Path, help="dataset root ({label}/{uid}/frames/...)")
    ap.add_argument("--out", type=Path, help="cue cache JSON (default ROOT/cues.json)")
    ap.add_argument("--config", type=Path, help="YAML with a 'cues' section")
    ap.add_argument("--split", help="only clips of this metadata.csv split")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--save-every", type=int, default=20, help="save the cache every N batches")
    ap.add_argument("--limit", type=int, help="at most N new frames (for a quick look)")
    ap.add_argument("overrides", nargs="*", help="key=value on the cues section, e.g. backend=nouns")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cues_cfg = get(load_yaml(args.config), "cues", {}) if args.config else {}
        cues_cfg = apply_overrides(cues_cfg, args.overrides)
        run(args.root, args.out or args.root / "cues.json", cues_cfg, args.batch_size, args.split,
            args.save_every, args.limit)
    except AVSError as exc:
        print(f"make_cues: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
