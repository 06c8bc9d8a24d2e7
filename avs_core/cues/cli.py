"""``avs cues``: print the text cues the configured backend gives for an image and/or a sound.

    avs cues --image grace_hopper --audio speech            # asset names or file paths
    avs cues --image photo.jpg backend=detector             # key=value on the cues config section
    avs cues --config config/avs.yaml --image photo.jpg     # the file's 'cues' section
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import assets
from ..config import apply_overrides, get, load_yaml
from ..errors import InputError


def _path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.exists():
        return p
    if name_or_path not in assets.ASSETS:
        raise InputError(f"{name_or_path}: no such file, and not an asset name ({', '.join(sorted(assets.ASSETS))})")
    return assets.resolve(name_or_path)


def _read_image(name_or_path: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(_path(name_or_path)) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise InputError(f"cannot read image {name_or_path}: {exc}") from None


def _read_audio(name_or_path: str, start_s: float, seconds: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        samples, sr = sf.read(str(_path(name_or_path)), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise InputError(f"cannot read audio {name_or_path}: {exc}") from None
    return samples[int(start_s * sr): int((start_s + seconds) * sr)].mean(axis=1), sr


def _run(args) -> int:
    from .providers import build_cue_provider

    cfg = get(load_yaml(args.config), "cues", {}) if args.config else {}
    cfg = apply_overrides(cfg, args.overrides)
    if args.image is None and args.audio is None:
        raise InputError("give --image and/or --audio")
    frame = _read_image(args.image) if args.image else None
    audio, sr = _read_audio(args.audio, args.start, args.seconds) if args.audio else (None, None)
    provider = build_cue_provider(cfg)
    try:
        cues = provider(frame, audio, sr, stamp=0.0)
    finally:
        if hasattr(provider, "close"):
            provider.close()
    print(json.dumps({"texts": list(cues.texts), "source": cues.source, "caption": cues.caption}))
    return 0


def register(sub) -> None:
    p = sub.add_parser("cues", help="scene text cues for an image / sound with the configured backend",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--image", help="image file or asset name")
    p.add_argument("--audio", help="audio file or asset name")
    p.add_argument("--start", type=float, default=0.0, help="audio start (s)")
    p.add_argument("--seconds", type=float, default=1.0, help="audio length (s)")
    p.add_argument("--config", type=Path, help="YAML file with a 'cues' section")
    p.add_argument("overrides", nargs="*", help="key=value on the cues section (backend=detector, ...)")
    p.set_defaults(func=_run)
