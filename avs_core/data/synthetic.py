"""Synthetic audio-visual scenes whose ground truth is known exactly.

Every class has its own look (shape, texture, colour, size, motion) and its own
sound (harmonic stack, noise band, chirp or rhythm). A clip shows a few objects
of distinct classes for ``seconds`` seconds; in each second a random subset of
them sounds, and the ground truth of that second's frame is the visible pixels
of the sounding objects only. The hard cases AVS models fail on are built in:
silent seconds (empty ground truth), objects that stay visible while silent
although their class sounds in other clips (the "segmentation preference"
trap), several simultaneous sources, and held-out classes that only appear in
the ``unseen`` split.

Everything is a pure function of (seed, split, clip index), so a set can be
used in memory (:class:`SyntheticDataset`) or written to disk in the
AVSBench-semantic layout (:func:`write_avss`, ``avs synth``) and regenerated
bit-identically. The text cues of a frame are the class names of the objects
visible in it: what a captioner + LLM cue extractor would report.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from ..cues.cache import CueCache
from ..errors import ConfigError
from .avsbench import FrameDataset, voc_palette

SAMPLE_RATE = 16_000
SPLITS = ("train", "val", "test", "unseen")


@dataclass(frozen=True)
class ObjectClass:
    name: str
    shape: str
    colour: tuple[int, int, int]
    texture: str
    size: float  # radius as a fraction of the frame's shorter side
    motion: str
    sound: str
    pitch: float  # Hz, the class's characteristic frequency


# Looks and sounds chosen so that no two classes share both; the last two are held out.
CLASSES: tuple[ObjectClass, ...] = (
    ObjectClass("guitar", "circle", (220, 60, 50), "solid", 0.17, "static", "pluck", 196.0),
    ObjectClass("drum", "square", (50, 90, 220), "checker", 0.16, "static", "beat", 0.0),
    ObjectClass("bird", "triangle", (240, 200, 40), "solid", 0.11, "circle", "chirp", 3000.0),
    ObjectClass("engine", "diamond", (60, 170, 70), "hstripes", 0.18, "horizontal", "rumble", 120.0),
    ObjectClass("violin", "ellipse", (160, 70, 200), "vstripes", 0.15, "vertical", "bowed", 440.0),
    ObjectClass("siren", "cross", (240, 130, 30), "solid", 0.15, "horizontal", "sweep", 800.0),
    ObjectClass("bell", "ring", (40, 200, 200), "solid", 0.14, "static", "bell", 660.0),
    ObjectClass("rain", "square", (120, 120, 255), "dots", 0.2, "vertical", "hiss", 4000.0),
    # Held out of training (unseen split).
    ObjectClass("flute", "triangle", (255, 105, 180), "hstripes", 0.13, "vertical", "tone", 880.0),
    ObjectClass("typing", "diamond", (150, 110, 60), "checker", 0.14, "static", "clicks", 2500.0),
)


@dataclass
class SynthConfig:
    seed: int = 0
    size: int = 128  # frame height = width, pixels
    seconds: int = 5  # frames (one per second) per clip
    clips: dict = field(default_factory=lambda: {"train": 200, "val": 20, "test": 40, "unseen": 40})
    num_unseen: int = 2  # the last classes of CLASSES are held out
    objects: tuple[int, int] = (1, 3)  # min, max objects per clip
    p_sound: float = 0.5  # chance that a visible object sounds in a given second
    p_silent_second: float = 0.15  # chance that a whole second is silent
    # Ambient noise (white or low-passed) at a per-clip level in dB re full scale, under every
    # second, sounding or silent: broadband noise is never an object's sound.
    ambient_db: tuple[float, float] = (-60.0, -20.0)

    @classmethod
    def from_dict(cls, d: dict | None) -> "SynthConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown synthetic data keys: {sorted(unknown)}")
        cfg = cls(**d)
        for key in ("objects", "ambient_db"):
            if key in d:
                setattr(cfg, key, tuple(d[key]))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not 0 <= self.num_unseen < len(CLASSES) - 1:
            raise ConfigError(f"num_unseen must lie in [0, {len(CLASSES) - 2}]")
        if self.size < 32 or self.seconds < 1:
            raise ConfigError("synthetic size must be >= 32 pixels and seconds >= 1")
        lo, hi = self.objects
        if not 1 <= lo <= hi <= len(self.seen_classes):
            raise ConfigError(f"objects range {self.objects} must lie within [1, {len(self.seen_classes)}]")
        for split in self.clips:
            if split not in SPLITS:
                raise ConfigError(f"unknown synthetic split {split!r}; use {SPLITS}")

    @property
    def seen_classes(self) -> tuple[ObjectClass, ...]:
        return CLASSES[: len(CLASSES) - self.num_unseen]

    @property
    def unseen_classes(self) -> tuple[ObjectClass, ...]:
        return CLASSES[len(CLASSES) - self.num_unseen:]


@dataclass
class Clip:
    uid: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    labels: np.ndarray  # (T, H, W) uint8: 0 background, c + 1 for sounding objects of CLASSES[c]
    audio: np.ndarray  # (T * SAMPLE_RATE,) float32
    visible: list[list[str]]  # per second: class names on screen (the text cues)
    sounding: list[list[str]]  # per second: class names that sound
    silent_visible: np.ndarray  # (T, H, W) bool: visible-but-silent object pixels

    @property
    def masks(self) -> np.ndarray:
        return (self.labels > 0).astype(np.uint8)


def class_names() -> list[str]:
    """Semantic label names, index 0 = background (AVSS convention)."""
    return ["background"] + [c.name for c in CLASSES]


def _rng(seed: int, *parts) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed,) + parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# ----------------------------------------------------------------------------- pictures

def _shape_mask(shape: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    dy, dx = (yy - cy) / r, (xx - cx) / r
    if shape == "circle":
        return dx**2 + dy**2 <= 1
    if shape == "square":
        return (np.abs(dx) <= 0.85) & (np.abs(dy) <= 0.85)
    if shape == "triangle":
        return (dy <= 0.8) & (dy >= -1 + 2 * np.abs(dx))
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1
    if shape == "ellipse":
        return (dx / 1.0) ** 2 + (dy / 0.55) ** 2 <= 1
    if shape == "cross":
        return ((np.abs(dx) <= 1) & (np.abs(dy) <= 0.3)) | ((np.abs(dy) <= 1) & (np.abs(dx) <= 0.3))
    if shape == "ring":
        d2 = dx**2 + dy**2
        return (d2 <= 1) & (d2 >= 0.35)
    raise ConfigError(f"unknown synthetic shape {shape!r}")


def _texture(texture: str, colour, yy, xx, size: int) -> np.ndarray:
    base = np.broadcast_to(np.asarray(colour, np.float32), yy.shape + (3,)).copy()
    period = max(4, size // 16)
    if texture == "solid":
        return base
    if texture == "hstripes":
        on = (yy // period) % 2 == 0
    elif texture == "vstripes":
        on = (xx // period) % 2 == 0
    elif texture == "checker":
        on = ((yy // period) + (xx // period)) % 2 == 0
    elif texture == "dots":
        on = ((yy % period) - period / 2) ** 2 + ((xx % period) - period / 2) ** 2 <= (period / 3) ** 2
    else:
        raise ConfigError(f"unknown synthetic texture {texture!r}")
    return np.where(on[..., None], base, base * 0.45)


def _position(cls: ObjectClass, t: float, start: np.ndarray, phase: float, size: int, r: float) -> tuple[float, float]:
    amp = 0.18 * size
    cy, cx = start
    if cls.motion == "horizontal":
        cx += amp * np.sin(2 * np.pi * 0.2 * t + phase)
    elif cls.motion == "vertical":
        cy += amp * np.sin(2 * np.pi * 0.2 * t + phase)
    elif cls.motion == "circle":
        cy += amp * np.sin(2 * np.pi * 0.15 * t + phase)
        cx += amp * np.cos(2 * np.pi * 0.15 * t + phase)
    return float(np.clip(cy, r, size - r)), float(np.clip(cx, r, size - r))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    top, bottom = rng.uniform(70, 170, 3), rng.uniform(70, 170, 3)
    ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    img = top * (1 - ramp) + bottom * ramp
    return np.broadcast_to(img, (size, size, 3)) + rng.normal(0, 6, (size, size, 3))


# ----------------------------------------------------------------------------- sounds

def _sound(cls: ObjectClass, rng: np.random.Generator, n: int) -> np.ndarray:
    """One second of the class's sound; pitch, phase and timing jitter per instance."""
    t = np.arange(n) / SAMPLE_RATE
    f = cls.pitch * rng.uniform(0.92, 1.08)
    kind = cls.sound
    if kind == "pluck":  # decaying harmonic stack, two plucks
        x = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 7))
        env = np.exp(-6 * ((t + rng.uniform(0, 0.5)) % 0.5))
    elif kind == "bowed":  # sustained, bright harmonics with vibrato
        ph = 2 * np.pi * f * t + 3 * np.sin(2 * np.pi * 5.5 * t)
        x = sum(np.sin(k * ph) * 0.8**k for k in range(1, 9))
        env = np.ones_like(t)
    elif kind == "tone":  # near-pure tone with a breathy octave
        x = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t) + 0.05 * rng.normal(size=n)
        env = np.ones_like(t)
    elif kind == "bell":  # inharmonic partials, one strike per second
        x = sum(np.sin(2 * np.pi * f * m * t) for m in (1.0, 2.76, 5.40, 8.93))
        env = np.exp(-4 * ((t + rng.uniform(0, 1)) % 1.0))
    elif kind == "beat":  # low noise bursts at 4 Hz
        noise = rng.normal(size=n)
        x = np.convolve(noise, np.ones(20) / 20, mode="same") * 3 + np.sin(2 * np.pi * 60 * t)
        env = np.exp(-25 * ((t + rng.uniform(0, 0.25)) % 0.25))
    elif kind == "clicks":  # short high clicks at an irregular ~8 Hz
        x = np.sin(2 * np.pi * f * t) * rng.normal(size=n)
        env = np.zeros_like(t)
        for onset in np.cumsum(rng.uniform(0.07, 0.18, 16)):
            env += np.exp(-200 * np.clip(t - onset, 0, None)) * (t >= onset)
    elif kind == "rumble":  # low band of noise, amplitude-modulated
        noise = rng.normal(size=n)
        x = np.convolve(noise, np.ones(60) / 60, mode="same") * 6 + 0.5 * np.sin(2 * np.pi * f * t)
        env = 0.7 + 0.3 * np.sin(2 * np.pi * 11 * t)
    elif kind == "hiss":  # high band of noise (differenced white noise)
        x = np.diff(rng.normal(size=n + 1)) * 0.6
        env = np.ones_like(t)
    elif kind == "chirp":  # fast upward chirps, ~5 per second
        period = 0.2
        local = (t + rng.uniform(0, period)) % period
        x = np.sin(2 * np.pi * (f * local + 0.5 * f / 0.08 * local**2))
        env = (local < 0.08).astype(float)
    elif kind == "sweep":  # slow siren sweep
        inst = f * (1 + 0.5 * np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 2 * np.pi)))
        x = np.sin(2 * np.pi * np.cumsum(inst) / SAMPLE_RATE)
        env = np.ones_like(t)
    else:
        raise ConfigError(f"unknown synthetic sound {kind!r}")
    x = np.asarray(x * env, np.float64)
    rms = np.sqrt(np.mean(x**2)) + 1e-12
    return (x / rms * rng.uniform(0.08, 0.2)).astype(np.float32)


# ----------------------------------------------------------------------------- clips

def make_clip(cfg: SynthConfig, split: str, index: int) -> Clip:
    """Clip ``index`` of ``split``: a pure function of (cfg, split, index)."""
    if split not in SPLITS:
        raise ConfigError(f"unknown synthetic split {split!r}; use {SPLITS}")
    rng = _rng(cfg.seed, split, index)
    size, T = cfg.size, cfg.seconds
    seen = list(cfg.seen_classes)
    n_obj = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
    if split == "unseen":
        # At least one held-out class, the others seen (they act as distractors or co-sources).
        held = [cfg.unseen_classes[int(rng.integers(len(cfg.unseen_classes)))]]
        others = [seen[i] for i in rng.choice(len(seen), size=max(0, n_obj - 1), replace=False)]
        objs = held + others
    else:
        objs = [seen[i] for i in rng.choice(len(seen), size=n_obj, replace=False)]
    # Spawn points spread over the frame; draw order = list order (later objects occlude).
    starts = [rng.uniform(0.25, 0.75, 2) * size for _ in objs]
    radii = [c.size * size * rng.uniform(0.85, 1.15) for c in objs]
    phases = rng.uniform(0, 2 * np.pi, len(objs))
    if split == "unseen":
        # Held-out sources should sound often enough to be measurable.
        sounds = rng.random((T, len(objs))) < cfg.p_sound
        sounds[:, 0] |= rng.random(T) < 0.5
    else:
        sounds = rng.random((T, len(objs))) < cfg.p_sound
    silent_second = rng.random(T) < cfg.p_silent_second
    sounds[silent_second] = False

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = _background(rng, size)
    textures = [_texture(c.texture, c.colour, yy.astype(int), xx.astype(int), size) for c in objs]
    n = SAMPLE_RATE
    frames = np.zeros((T, size, size, 3), np.uint8)
    labels = np.zeros((T, size, size), np.uint8)
    silent_vis = np.zeros((T, size, size), bool)
    audio = np.zeros(T * n, np.float32)
    ambient_rms = 10 ** (rng.uniform(*cfg.ambient_db) / 20)
    ambient_lowpass = rng.random() < 0.5
    visible, sounding = [], []
    for k in range(T):
        img = background.copy()
        owner = np.full((size, size), -1, np.int64)
        for j, c in enumerate(objs):
            # Frame k shows the scene at the middle of second k.
            cy, cx = _position(c, k + 0.5, starts[j], phases[j], size, radii[j])
            m = _shape_mask(c.shape, yy, xx, cy, cx, radii[j])
            img[m] = textures[j][m]
            owner[m] = j
        frames[k] = np.clip(img, 0, 255).astype(np.uint8)
        for j, c in enumerate(objs):
            pix = owner == j
            if sounds[k, j]:
                labels[k][pix] = CLASSES.index(c) + 1
                audio[k * n:(k + 1) * n] += _sound(c, rng, n)
            else:
                silent_vis[k] |= pix
        ambient = rng.normal(0, 1, n)
        if ambient_lowpass:
            ambient = np.convolve(ambient, np.ones(8) / np.sqrt(8), mode="same")
        audio[k * n:(k + 1) * n] += (ambient * ambient_rms).astype(np.float32)
        visible.append([c.name for j, c in enumerate(objs) if (owner == j).any()])
        sounding.append([c.name for j, c in enumerate(objs) if sounds[k, j]])
    audio = np.clip(audio, -1.0, 1.0)
    return Clip(f"synth_{split}_{cfg.seed}_{index:05d}", frames, labels, audio, visible, sounding, silent_vis)


def clip_count(cfg: SynthConfig, split: str) -> int:
    return int(cfg.clips.get(split, 0))


class SyntheticDataset(FrameDataset):
    """In-memory frame dataset over one split; clips are generated on first use and kept."""

    def __init__(self, cfg: SynthConfig, split: str):
        self.cfg, self.split = cfg, split
        self._clips: dict[int, Clip] = {}
        records = [{"video_id": f"synth_{split}_{cfg.seed}_{i:05d}", "category": "", "clip": i, "frame": k}
                   for i in range(clip_count(cfg, split)) for k in range(cfg.seconds)]
        super().__init__(records, f"synthetic {split}")
        self.class_names = class_names()

    def clip(self, i: int) -> Clip:
        if i not in self._clips:
            self._clips[i] = make_clip(self.cfg, self.split, i)
        return self._clips[i]

    def video_classes(self) -> dict[str, str]:
        # Stratify few-shot subsets by the first object's class.
        return {r["video_id"]: self.clip(r["clip"]).visible[0][0] for r in self.records if r["frame"] == 0}

    def load(self, rec: dict) -> dict:
        c, k = self.clip(rec["clip"]), rec["frame"]
        start = max(0, int(round((k - self.audio_before_s) * SAMPLE_RATE)))
        return {"image": c.frames[k], "audio": c.audio[start:(k + 1) * SAMPLE_RATE],
                "sample_rate": SAMPLE_RATE, "mask": c.masks[k], "labels": c.labels[k].astype(np.int64),
                "silent_visible": c.silent_visible[k], "cues": list(c.visible[k]),
                "video_id": rec["video_id"], "frame": k}


def write_avss(cfg: SynthConfig, out: str | Path, label: str = "synth") -> dict[str, int]:
    """Write every split to ``out`` in the AVSBench-semantic layout; returns clips per split.

    Adds ``label2idx.json`` (class -> index, background 0), ``cues.json`` (the cue
    cache: per clip and frame the visible class names) and ``synth_config.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = class_names()
    palette = voc_palette(len(names))
    cues = CueCache(out / "cues.json")
    rows = []
    counts = {}
    for split in SPLITS:
        counts[split] = clip_count(cfg, split)
        for i in range(counts[split]):
            c = make_clip(cfg, split, i)
            clip_dir = out / label / c.uid
            (clip_dir / "frames").mkdir(parents=True, exist_ok=True)
            (clip_dir / "labels_rgb").mkdir(parents=True, exist_ok=True)
            for k in range(cfg.seconds):
                # PNG frames: lossless, so the on-disk set equals the in-memory one.
                Image.fromarray(c.frames[k]).save(clip_dir / "frames" / f"{k}.png")
                Image.fromarray(palette[c.labels[k]]).save(clip_dir / "labels_rgb" / f"{k}.png")
            sf.write(str(clip_dir / "audio.wav"), c.audio, SAMPLE_RATE, subtype="FLOAT")
            for k in range(cfg.seconds):
                cues.put(c.uid, k, c.visible[k])
            sounding = sorted({n for sec in c.sounding for n in sec})
            rows.append({"vid": c.uid, "uid": c.uid, "s_min": 0, "s_sec": 0, "a_obj": "_".join(sounding),
                         "split": split, "label": label})
    with (out / "metadata.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "label2idx.json").write_text(json.dumps({n: i for i, n in enumerate(names)}, indent=1), encoding="utf-8")
    cues.save()
    (out / "synth_config.json").write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
    return counts
