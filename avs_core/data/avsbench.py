"""AVSBench loaders: AVSBench-object (S4, MS3), AVSBench-semantic (AVSS) and the AVS-V3 splits.

All datasets are frame-level: item i is one annotated frame with the second of
audio it is paired with (frame k <-> audio second k), as a frame sample dict
(see :mod:`.transforms`). Unannotated frames (S4 train keeps only frame 1, and
AVSS v1s train only frame 0) are not items, which also makes AVSS's padding of
short clips to 10 frames unnecessary: only real frames are trained on and scored.

Layouts (paths relative to ``root``):

* S4: ``s4_meta_data.csv`` (column 0 name, column 2 category, ``split``),
  ``s4_data/visual_frames/{split}/{category}/{name}/{name}_{i}.png`` (i = 1..5),
  ``s4_data/gt_masks/{split}/{category}/{name}/{name}_{i}.png``,
  ``s4_data/audio_wav/{split}/{category}/{name}.wav``.
* MS3: ``ms3_meta_data.csv``, ``ms3_data/visual_frames/{name}/{name}_{i}.png``,
  ``ms3_data/gt_masks/{split}/{name}/{name}_{i}.png``, ``ms3_data/audio_wav/{split}/{name}.wav``.
* AVSS: ``metadata.csv`` (vid, uid, s_min, s_sec, a_obj, split, label),
  ``{label}/{uid}/frames/{k}.jpg``, ``{label}/{uid}/labels_rgb/{k}.png``,
  ``{label}/{uid}/audio.wav``; ``label2idx.json`` maps class names to indices
  (0 = background) and colours follow the PASCAL VOC palette, as in AVSBench.
* AVS-V3: the seen/unseen and k-shot CSVs from the ``avsbench_v3_splits`` asset
  select AVSS clips (:func:`v3_rows`).
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch.utils.data
from PIL import Image

from .. import assets
from ..audio.frontend import to_mono_float
from ..cues.cache import CueCache
from ..errors import ConfigError, InputError

V3_SPLITS = (
    "meta_v3_seen", "meta_v3_seen_train", "meta_v3_seen_val", "meta_v3_unseen", "metadata",
    "v3_1_shot/train", "v3_1_shot/test", "v3_3_shot/train", "v3_3_shot/test", "v3_5_shot/train", "v3_5_shot/test",
)


def voc_palette(num_classes: int) -> np.ndarray:
    """The PASCAL VOC colour map (class c -> RGB), which AVSBench-semantic's labels_rgb use."""
    pal = np.zeros((num_classes, 3), np.uint8)
    for c in range(num_classes):
        lab, r, g, b = c, 0, 0, 0
        for i in range(8):
            r |= ((lab >> 0) & 1) << (7 - i)
            g |= ((lab >> 1) & 1) << (7 - i)
            b |= ((lab >> 2) & 1) << (7 - i)
            lab >>= 3
        pal[c] = (r, g, b)
    return pal


def labels_from_rgb(rgb: np.ndarray, palette: np.ndarray, source: str = "mask") -> np.ndarray:
    """HxWx3 colour mask -> HxW class indices; colours outside the palette are an InputError."""
    key = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    pal_key = (palette[:, 0].astype(np.int64) << 16) | (palette[:, 1].astype(np.int64) << 8) | palette[:, 2]
    order = np.argsort(pal_key)
    pos = np.clip(np.searchsorted(pal_key[order], key), 0, len(order) - 1)
    found = pal_key[order][pos] == key
    if not found.all():
        bad = tuple(int(v) for v in rgb[~found][0])
        raise InputError(f"{source}: colour {bad} is not in the {len(palette)}-class palette")
    return order[pos].astype(np.int64)


def read_audio_second(path: Path, second: int, seconds: float = 1.0, before_s: float = 0.0) -> tuple[np.ndarray, int]:
    """Mono float32 audio of [second - before_s, second + seconds) from a WAV file (the part before the
    file's start left out), zero-padded at the end."""
    if not path.is_file():
        raise InputError(f"audio file not found: {path}")
    info = sf.info(str(path))
    sr = int(info.samplerate)
    start = max(0, int(round((second - before_s) * sr)))
    n = int(round((second + seconds) * sr)) - start
    data, _ = sf.read(str(path), start=min(start, info.frames), stop=min(start + n, info.frames),
                      dtype="float32", always_2d=True)
    x = to_mono_float(data, sr) if data.size else np.zeros(0, np.float32)
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    return x, sr


def _read_rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_cue_cache(path: str | Path | None) -> CueCache | None:
    """The cue cache (:mod:`avs_core.cues.cache` format) at ``path``, or None when no path is given."""
    return CueCache.load(path, missing_ok=False) if path else None


def frame_cues(cache: CueCache | None, uid: str, frame: int) -> list[str]:
    return list((cache.get(uid, frame) if cache is not None else None) or [])


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        raise ConfigError(f"metadata file not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def v3_rows(name: str, assets_root: str | None = None) -> list[dict]:
    """Rows of an AVS-V3 split CSV (e.g. ``meta_v3_unseen``, ``v3_3_shot/train``) from the asset zip."""
    if name not in V3_SPLITS:
        raise ConfigError(f"unknown AVS-V3 split {name!r}; known: {', '.join(V3_SPLITS)}")
    zpath = assets.resolve("avsbench_v3_splits", assets_root)
    with zipfile.ZipFile(zpath) as zf:
        text = zf.read(f"v3/{name}.csv").decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


class FrameDataset(torch.utils.data.Dataset):
    """Base: a list of frame records, each loaded on demand into a frame sample dict."""

    # Seconds of audio before each frame's own second included in its sample (as far as the clip goes):
    # a model's listening context, e.g. the zero-shot tagger's (AVSPipeline.audio_span_s - window_s).
    audio_before_s: float = 0.0

    def __init__(self, records: list[dict], name: str):
        if not records:
            raise ConfigError(f"{name}: no annotated frames found")
        self.records = records
        self.name = name

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        return self.load(self.records[i])

    def load(self, rec: dict) -> dict:
        raise NotImplementedError

    def video_classes(self) -> dict[str, str]:
        """video id -> class (category / a_obj) for stratified few-shot subsets."""
        return {r["video_id"]: r["category"] for r in self.records}

    def subset_videos(self, video_ids) -> "FrameDataset":
        keep = set(video_ids)
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.records = [r for r in self.records if r["video_id"] in keep]
        if not out.records:
            raise ConfigError(f"{self.name}: the subset selects no frames")
        return out


class AVSObjectDataset(FrameDataset):
    """AVSBench-object S4 (single source) or MS3 (multiple sources), binary masks."""

    def __init__(self, root: str | Path, subset: str, split: str, cue_cache: str | Path | None = None):
        root = Path(root)
        if subset not in ("s4", "ms3"):
            raise ConfigError(f"AVSBench-object subset must be 's4' or 'ms3', got {subset!r}")
        self.root, self.subset = root, subset
        self.cues = load_cue_cache(cue_cache)
        rows = [r for r in self._rows(root / f"{subset}_meta_data.csv") if r["split"] == split]
        data = root / f"{subset}_data"
        records = []
        for r in rows:
            name, cat = r["name"], r["category"]
            if subset == "s4":
                frames = data / "visual_frames" / split / cat / name
                masks = data / "gt_masks" / split / cat / name
                wav = data / "audio_wav" / split / cat / f"{name}.wav"
            else:
                frames = data / "visual_frames" / name
                masks = data / "gt_masks" / split / name
                wav = data / "audio_wav" / split / f"{name}.wav"
            for i in range(1, 6):
                mask = masks / f"{name}_{i}.png"
                if mask.is_file():  # S4 train annotates frame 1 only
                    records.append({"video_id": name, "category": cat, "frame": i - 1,
                                    "image": frames / f"{name}_{i}.png", "mask": mask, "wav": wav})
        super().__init__(records, f"AVSBench-{subset} {split} ({root})")

    @staticmethod
    def _rows(path: Path) -> list[dict]:
        # The reference code reads column 0 as the name and column 2 as the category.
        if not path.is_file():
            raise ConfigError(f"metadata file not found: {path}")
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            if "split" not in header:
                raise ConfigError(f"{path}: no 'split' column in header {header}")
            s = header.index("split")
            return [{"name": row[0], "category": row[2] if len(row) > 2 else "", "split": row[s]} for row in reader if row]

    def load(self, rec: dict) -> dict:
        image = _read_rgb(rec["image"])
        mask = (_read_rgb(rec["mask"]).max(axis=2) > 127).astype(np.uint8)
        audio, sr = read_audio_second(rec["wav"], rec["frame"], before_s=self.audio_before_s)
        return {"image": image, "audio": audio, "sample_rate": sr, "mask": mask, "labels": None,
                "cues": frame_cues(self.cues, rec["video_id"], rec["frame"]),
                "video_id": rec["video_id"], "frame": rec["frame"]}


class AVSSemanticDataset(FrameDataset):
    """AVSBench-semantic layout (also AVS-V3 and the synthetic sets): semantic + binary masks.

    ``split`` filters ``metadata.csv``; ``rows`` (e.g. from :func:`v3_rows`) selects clips instead.
    """

    def __init__(self, root: str | Path, split: str | None = None, rows: list[dict] | None = None,
                 cue_cache: str | Path | None = None):
        root = Path(root)
        self.root = root
        if rows is None:
            if split is None:
                raise ConfigError("AVSSemanticDataset needs a split or explicit rows")
            rows = [r for r in _read_csv(root / "metadata.csv") if r["split"] == split]
        l2i = root / "label2idx.json"
        self.label2idx = json.loads(l2i.read_text(encoding="utf-8")) if l2i.is_file() else None
        if self.label2idx is not None:
            n = max(self.label2idx.values()) + 1
            self.class_names = [""] * n
            for k, v in self.label2idx.items():
                self.class_names[v] = k
            self.palette = voc_palette(n)
        else:
            self.class_names, self.palette = None, None
        self.cues = load_cue_cache(cue_cache if cue_cache else (root / "cues.json" if (root / "cues.json").is_file() else None))
        records = []
        for r in rows:
            clip = root / r["label"] / r["uid"]
            labels_dir = clip / "labels_rgb"
            if not labels_dir.is_dir():
                raise ConfigError(f"clip {r['uid']}: missing {labels_dir}")
            for lab in sorted(labels_dir.glob("*.png"), key=lambda p: int(p.stem)):
                k = int(lab.stem)
                frame = next((clip / "frames" / f"{k}{ext}" for ext in (".jpg", ".png")
                              if (clip / "frames" / f"{k}{ext}").is_file()), clip / "frames" / f"{k}.jpg")
                records.append({"video_id": r["uid"], "category": r.get("a_obj", ""), "frame": k,
                                "image": frame, "mask": lab, "wav": clip / "audio.wav"})
        super().__init__(records, f"AVSBench-semantic {split or 'rows'} ({root})")

    def load(self, rec: dict) -> dict:
        image = _read_rgb(rec["image"])
        rgb = _read_rgb(rec["mask"])
        if self.palette is not None:
            labels = labels_from_rgb(rgb, self.palette, str(rec["mask"]))
            mask = (labels > 0).astype(np.uint8)
        else:
            labels, mask = None, (rgb.max(axis=2) > 0).astype(np.uint8)
        audio, sr = read_audio_second(rec["wav"], rec["frame"], before_s=self.audio_before_s)
        return {"image": image, "audio": audio, "sample_rate": sr, "mask": mask, "labels": labels,
                "cues": frame_cues(self.cues, rec["video_id"], rec["frame"]),
                "video_id": rec["video_id"], "frame": rec["frame"]}
