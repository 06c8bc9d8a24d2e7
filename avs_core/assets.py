"""Find the shared pretrained assets by name, verify them, explain what is missing.

Assets are never copied into the repository: they live in an assets directory
(``assets_dir`` config key, ``AVS_ASSETS_DIR`` environment variable, default the
``shared/assets`` folder beside the checkout). Each asset folder has a SOURCE.md
whose markdown table lists file name, size and sha256; that table is the
manifest we verify against.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import AssetError

ENV_VAR = "AVS_ASSETS_DIR"
_REPO_ROOT = Path(__file__).resolve().parent.parent
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Logical name -> (folder, file). Callers use the logical names only.
ASSETS: dict[str, tuple[str, str]] = {
    "efficientat_mn04": ("efficientat_mn04_as", "mn04_as_mAP_432.pt"),
    "audioset_labels": ("efficientat_mn04_as", "class_labels_indices.csv"),
    "yolox_nano": ("yolox_nano_coco", "yolox_nano.onnx"),
    "yolox_dog": ("yolox_nano_coco", "dog.jpg"),
    "deeplabv3_voc": ("deeplabv3_voc", "deeplabv3_mnv2_pascal_quant.tflite"),
    "deeplabv3_voc_dm05": ("deeplabv3_voc", "deeplabv3_mnv2_dm05_pascal_quant.tflite"),
    "bird_segmentation": ("deeplabv3_voc", "bird_segmentation.bmp"),
    "bird_segmentation_mask": ("deeplabv3_voc", "bird_segmentation_mask.bmp"),
    "dog_segmentation": ("deeplabv3_voc", "dog_segmentation.bmp"),
    "dog_segmentation_mask": ("deeplabv3_voc", "dog_segmentation_mask.bmp"),
    "grace_hopper": ("images", "grace_hopper.bmp"),
    "cat": ("images", "cat.bmp"),
    "owl": ("images", "owl.jpg"),
    "parrot": ("images", "parrot.jpg"),
    "pets": ("images", "pets.jpg"),
    "traffic_0001": ("images", "traffic_0001.bmp"),
    "traffic_0002": ("images", "traffic_0002.bmp"),
    "traffic_0003": ("images", "traffic_0003.bmp"),
    "music": ("audio_samples", "music.wav"),
    "speech": ("audio_samples", "speech.wav"),
    "typing": ("audio_samples", "typing.wav"),
    "bbb_30s": ("av_clips", "big_buck_bunny_0_30.webm"),
    "bbb_1s": ("av_clips", "big_buck_bunny_432_433.webm"),
    "avsbench_v3_splits": ("avsbench_meta", "v3.zip"),
    "vggish_embedding_sample": ("avsbench_meta", "vggish_emb_iSerV5DbY_68000_78000.npy"),
    "audioset_ontology": ("audioset_ontology", "ontology.json"),
    "real_sounds/airplane_jet_opensfx_09.wav": ("real_sounds", "airplane_jet_opensfx_09.wav"),
    "real_sounds/bird_antum_02.flac": ("real_sounds", "bird_antum_02.flac"),
    "real_sounds/bird_berklee_4.mp3": ("real_sounds", "bird_berklee_4.mp3"),
    "real_sounds/car_engine_antum.flac": ("real_sounds", "car_engine_antum.flac"),
    "real_sounds/car_horn_berklee_1.mp3": ("real_sounds", "car_horn_berklee_1.mp3"),
    "real_sounds/cat_meow_antum.flac": ("real_sounds", "cat_meow_antum.flac"),
    "real_sounds/chainsaw_esc10_3-118972-B.ogg": ("real_sounds", "chainsaw_esc10_3-118972-B.ogg"),
    "real_sounds/church_bells_antum_01.flac": ("real_sounds", "church_bells_antum_01.flac"),
    "real_sounds/clap_berklee_1.mp3": ("real_sounds", "clap_berklee_1.mp3"),
    "real_sounds/clock_tick_esc10_3-142593-A.ogg": ("real_sounds", "clock_tick_esc10_3-142593-A.ogg"),
    "real_sounds/cow_antum_01.flac": ("real_sounds", "cow_antum_01.flac"),
    "real_sounds/crying_baby_esc10_3-152007-B.ogg": ("real_sounds", "crying_baby_esc10_3-152007-B.ogg"),
    "real_sounds/dog_bark_esc10_2-117271-A.ogg": ("real_sounds", "dog_bark_esc10_2-117271-A.ogg"),
    "real_sounds/dog_bark_esc10_3-155312-A.ogg": ("real_sounds", "dog_bark_esc10_3-155312-A.ogg"),
    "real_sounds/guitar_chord_berklee_1.mp3": ("real_sounds", "guitar_chord_berklee_1.mp3"),
    "real_sounds/helicopter_esc10_2-37806-C.ogg": ("real_sounds", "helicopter_esc10_2-37806-C.ogg"),
    "real_sounds/horse_berklee_1.mp3": ("real_sounds", "horse_berklee_1.mp3"),
    "real_sounds/laughter_berklee_1.mp3": ("real_sounds", "laughter_berklee_1.mp3"),
    "real_sounds/piano_chord_berklee.mp3": ("real_sounds", "piano_chord_berklee.mp3"),
    "real_sounds/rooster_esc10_3-154957-A.ogg": ("real_sounds", "rooster_esc10_3-154957-A.ogg"),
    "real_sounds/sheep_antum_baa.flac": ("real_sounds", "sheep_antum_baa.flac"),
    "real_sounds/siren_police_berklee_2.mp3": ("real_sounds", "siren_police_berklee_2.mp3"),
    "real_sounds/snare_drum_berklee_brush1.mp3": ("real_sounds", "snare_drum_berklee_brush1.mp3"),
    "real_sounds/toilet_flush_berklee.mp3": ("real_sounds", "toilet_flush_berklee.mp3"),
    "real_sounds/train_horn_opensfx_10.wav": ("real_sounds", "train_horn_opensfx_10.wav"),
    "real_sounds/trumpet_librosa_sorohanro.ogg": ("real_sounds", "trumpet_librosa_sorohanro.ogg"),
    "real_sounds/violin_berklee_bounce1.mp3": ("real_sounds", "violin_berklee_bounce1.mp3"),
}


@dataclass(frozen=True)
class AssetStatus:
    name: str
    path: Path
    present: bool
    verified: bool
    expected_sha256: str | None
    source: str


def assets_dir(configured: str | os.PathLike | None = None) -> Path:
    """The assets directory: explicit argument, then $AVS_ASSETS_DIR, then ../shared/assets."""
    if configured:
        return Path(configured).expanduser().resolve()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().resolve()
    return (_REPO_ROOT.parent / "shared" / "assets").resolve()


@lru_cache(maxsize=None)
def _manifest(folder: Path) -> tuple[dict[str, str], str]:
    """(file name -> sha256, origin repository) parsed from a folder's SOURCE.md tables."""
    source_md = folder / "SOURCE.md"
    if not source_md.is_file():
        return {}, "unknown (no SOURCE.md)"
    text = source_md.read_text(encoding="utf-8", errors="replace")
    repo = re.search(r"repository:\s*(\S+)", text)
    hashes: dict[str, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        sha = next((c for c in cells if _SHA256.match(c)), None)
        if sha is None:
            continue
        # Tables name the file in the first or second column depending on the folder,
        # sometimes as "upstream/path (saved here as NAME)".
        for cell in cells:
            renamed = re.search(r"saved here as (\S+?)\)", cell)
            name = renamed.group(1) if renamed else Path(cell.split(" ")[0]).name
            if name and not _SHA256.match(cell) and "." in name:
                hashes.setdefault(name, sha)
    return hashes, repo.group(1) if repo else "unknown"


@lru_cache(maxsize=None)
def _sha256(path: Path, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def status(name: str, root: str | os.PathLike | None = None) -> AssetStatus:
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    folder, file = ASSETS[name]
    base = assets_dir(root) / folder
    path = base / file
    hashes, repo = _manifest(base)
    expected = hashes.get(file)
    present = path.is_file()
    verified = False
    if present and expected:
        st = path.stat()
        verified = _sha256(path, st.st_mtime_ns, st.st_size) == expected
    return AssetStatus(name, path, present, verified, expected, repo)


def resolve(name: str, root: str | os.PathLike | None = None) -> Path:
    """Path of a verified asset, or an AssetError naming file, location and origin."""
    st = status(name, root)
    if not st.present:
        raise AssetError(
            f"asset {name!r} not found: expected {st.path} (origin: {st.source}); "
            f"set {ENV_VAR} or the 'assets_dir' config key to the folder holding '{st.path.parent.name}/'"
        )
    if st.expected_sha256 is None:
        raise AssetError(f"asset {name!r} at {st.path} has no sha256 entry in {st.path.parent / 'SOURCE.md'}")
    if not st.verified:
        raise AssetError(
            f"asset {name!r} at {st.path} fails its sha256 check (expected {st.expected_sha256}); "
            f"re-fetch it from {st.source}"
        )
    return st.path
