#!/usr/bin/env python3
"""Generate avs_core/asset_manifest.json from the SOURCE.md files of an assets mirror.

Run once when assets are added or re-pinned; the committed manifest is the source of
truth the code reads (it never parses SOURCE.md). Each SOURCE.md section gives
repository, commit and licence, and a table of files (path in the repository, file
name here, bytes, sha256); real_sounds/ gives repository and commit per row.

    python scripts/make_asset_manifest.py ../shared/assets > avs_core/asset_manifest.json
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import quote

# (folder, file) -> logical name used by the code (assets.resolve(name)). Files of
# real_sounds/ are named "real_sounds/<file>"; a file missing here stops the script.
NAMES = {
    ("efficientat_mn04_as", "mn04_as_mAP_432.pt"): "efficientat_mn04",
    ("efficientat_mn04_as", "class_labels_indices.csv"): "audioset_labels",
    ("audioset_ontology", "ontology.json"): "audioset_ontology",
    ("yolox_nano_coco", "yolox_nano.onnx"): "yolox_nano",
    ("yolox_nano_coco", "dog.jpg"): "yolox_dog",
    ("deeplabv3_voc", "deeplabv3_mnv2_pascal_quant.tflite"): "deeplabv3_voc",
    ("deeplabv3_voc", "deeplabv3_mnv2_dm05_pascal_quant.tflite"): "deeplabv3_voc_dm05",
    ("deeplabv3_voc", "bird_segmentation.bmp"): "bird_segmentation",
    ("deeplabv3_voc", "bird_segmentation_mask.bmp"): "bird_segmentation_mask",
    ("deeplabv3_voc", "dog_segmentation.bmp"): "dog_segmentation",
    ("deeplabv3_voc", "dog_segmentation_mask.bmp"): "dog_segmentation_mask",
    ("images", "grace_hopper.bmp"): "grace_hopper",
    ("images", "cat.bmp"): "cat",
    ("images", "owl.jpg"): "owl",
    ("images", "parrot.jpg"): "parrot",
    ("images", "pets.jpg"): "pets",
    ("images", "traffic_0001.bmp"): "traffic_0001",
    ("images", "traffic_0002.bmp"): "traffic_0002",
    ("images", "traffic_0003.bmp"): "traffic_0003",
    ("audio_samples", "music.wav"): "music",
    ("audio_samples", "speech.wav"): "speech",
    ("audio_samples", "typing.wav"): "typing",
    ("av_clips", "big_buck_bunny_0_30.webm"): "bbb_30s",
    ("av_clips", "big_buck_bunny_432_433.webm"): "bbb_1s",
    ("avsbench_meta", "v3.zip"): "avsbench_v3_splits",
    ("avsbench_meta", "vggish_emb_iSerV5DbY_68000_78000.npy"): "vggish_embedding_sample",
}
PER_FILE_NAMES = {"real_sounds"}
_SAVED_AS = re.compile(r"\s*\(saved here as ([^)]+)\)\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _github(repo: str) -> str:
    repo = repo.strip().removesuffix(".git")
    return repo if repo.startswith("https://") else f"https://github.com/{repo}"


def parse_source_md(folder: Path) -> list[dict]:
    """Rows of every table in folder/SOURCE.md, each with repository, commit, licence, path, file, size, sha256."""
    rows, meta, header = [], {}, None
    for line in (folder / "SOURCE.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):  # a new section (a folder may draw from several repositories)
            meta, header = {}, None
        elif m := re.match(r"- (repository|commit|license|licence): (.+)", line):
            meta["license" if m.group(1) == "licence" else m.group(1)] = m.group(2).strip()
        elif line.startswith("|"):
            cells = _cells(line)
            if header is None:
                header = [c.lower() for c in cells]
            elif not set("".join(cells)) <= set("-: "):
                rows.append(_row(folder.name, meta, dict(zip(header, cells))))
        else:
            header = None
    return rows


def _row(folder: str, meta: dict, row: dict) -> dict:
    path = row["path in repo"]
    saved_as = _SAVED_AS.search(path)
    path = _SAVED_AS.sub("", path)
    file = saved_as.group(1) if saved_as else row.get("file here") or row["file"]
    repo = _github(row.get("repository") or meta["repository"])
    commit = row.get("commit") or meta["commit"]
    licence = row.get("licence (author)") or meta["license"]
    sha = row["sha256"].lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise SystemExit(f"{folder}/{file}: bad sha256 {sha!r}")
    return {"folder": folder, "file": file, "size": int(row["bytes"]), "sha256": sha, "license": licence,
            "url": f"{repo}/raw/{commit}/{quote(path)}", "repository": repo, "commit": commit, "path": path}


def build(root: Path) -> dict:
    assets = {}
    for folder in sorted(p for p in root.iterdir() if (p / "SOURCE.md").is_file()):
        for row in parse_source_md(folder):
            key = (row["folder"], row["file"])
            name = f"{folder.name}/{row['file']}" if folder.name in PER_FILE_NAMES else NAMES.get(key)
            if name is None:
                raise SystemExit(f"{folder.name}/{row['file']}: no logical name; add it to NAMES in {__file__}")
            if not (folder / row["file"]).is_file():
                raise SystemExit(f"{folder.name}/{row['file']}: listed in SOURCE.md but not in the mirror")
            assets[name] = row
    if missing := sorted(set(NAMES.values()) - set(assets)):
        raise SystemExit(f"names without a SOURCE.md row: {', '.join(missing)}")
    return {"format": 1,
            "note": "Generated by scripts/make_asset_manifest.py from the mirror's SOURCE.md files; "
                    "url = https://github.com/OWNER/REPO/raw/COMMIT/PATH (pinned).",
            "assets": dict(sorted(assets.items()))}


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "assets")
    json.dump(build(root), sys.stdout, indent=1)
    sys.stdout.write("\n")
