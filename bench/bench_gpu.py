"""GAVS and TeSO-SAM with a random full-size SAM ViT-B at 1024x1024: our predictor vs a reference-style loop, one run.

For each model, masks/s over ``--frames`` distinct 640x480 frames (a new frame each time,
as from a camera: the image encoder runs every frame), side by side:
- reference: the papers' inference loop — preprocess on the CPU, upload, encoder +
  decoder in fp32 under ``torch.no_grad``, one frame at a time, mask back to the CPU;
- ours fp32: ``ModelPredictor`` under ``avs_core.pipeline.inference_context`` (inference
  mode), features kept on the device;
- ours ``--precision`` (default fp16): the same with CUDA autocast.

Weights are random (no SAM/CLIP/VGGish files needed): SAM is segment_anything's ViT-B
built without a checkpoint; the audio and text encoders are the tiny random ones of
config/models/tiny (they are a small share of the cost next to the ViT-B at 1024²).

    python bench/bench_gpu.py [--device cuda] [--frames 30] [--precision fp16|bf16] [--sam vit_b|tiny]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avs_core.modeling import ModelPredictor, build_model, load_model_config  # noqa: E402
from avs_core.pipeline import inference_context  # noqa: E402

MODELS = ("gavs", "teso_sam")


def model_config(name: str) -> dict:
    """The paper config with random weights: sections that name weight files come from the tiny config."""
    full, tiny = load_model_config(name), load_model_config(f"tiny/{name}")
    cfg = dict(full)
    for key, section in full.items():
        if key != "sam" and isinstance(section, dict) and any(k in section for k in ("path", "weights", "checkpoint")):
            cfg[key] = tiny[key]
    return cfg


def build(name: str, sam: str):
    if sam == "tiny":
        return build_model(load_model_config(f"tiny/{name}"))
    from segment_anything import sam_model_registry

    from avs_core.modeling import gavs, teso

    # segment_anything builds the full ViT-B (1024x1024 input) with random weights when given no checkpoint.
    random_vit_b = lambda cfg: sam_model_registry["vit_b"](checkpoint=None)  # noqa: E731
    saved = gavs.build_sam, teso.build_sam
    gavs.build_sam = teso.build_sam = random_vit_b
    try:
        return build_model(model_config(name))
    finally:
        gavs.build_sam, teso.build_sam = saved


def reference_loop(model, frames, audio, device) -> float:
    """Per frame: CPU preprocessing, upload, fp32 encoder + decoder under no_grad, mask to the CPU."""
    from segment_anything.utils.transforms import ResizeLongestSide

    model = model.to(device).eval()
    transform = ResizeLongestSide(model.input_size)
    size = model.input_size
    wave = torch.from_numpy(audio)[None].to(device)
    start = time.perf_counter()
    for frame in frames:
        with torch.no_grad():
            resized = transform.apply_image(frame)
            x = torch.from_numpy(resized).permute(2, 0, 1).float().div(255.0)
            x = F.pad(x, (0, size - x.shape[2], 0, size - x.shape[1]))[None].to(device)
            features = model.encode_image(x, valid_hw=[resized.shape[:2]])
            out = model.decode(features, {"audio": wave, "cues": [[]]})
            logits = out["mask_logits"][:, :, :resized.shape[0], :resized.shape[1]]
            mask = torch.sigmoid(F.interpolate(logits, frame.shape[:2], mode="bilinear", align_corners=False))
            mask[0, 0].cpu().numpy()
    _sync(device)
    return len(frames) / (time.perf_counter() - start)


def ours(model, frames, audio, device, precision) -> float:
    predictor = ModelPredictor(model, device=device)
    start = time.perf_counter()
    for frame in frames:
        with inference_context(device, precision):
            predictor.predict(frame, audio, 16000, [])
    _sync(device)
    return len(frames) / (time.perf_counter() - start)


def _sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--precision", choices=("fp16", "bf16"), default="fp16")
    ap.add_argument("--sam", choices=("vit_b", "tiny"), default="vit_b", help="tiny: a quick smoke run of the code paths")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(args.frames + 2)]
    audio = rng.normal(0, 0.1, 16000).astype(np.float32)
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'}), "
          f"SAM {args.sam}, {args.frames} distinct 640x480 frames, 1 s audio windows")
    print(f"{'model':10s} {'reference fp32':>15s} {'ours fp32':>10s} {'ours ' + args.precision:>10s} {'speed-up':>9s}")
    for name in MODELS:
        model = build(name, args.sam)
        # Warm-up (cuDNN autotuning, allocator) outside the timed loops, for every variant alike.
        reference_loop(model, frames[:2], audio, args.device)
        ours(model, frames[:2], audio, args.device, args.precision)
        ref = reference_loop(model, frames[2:], audio, args.device)
        fp32 = ours(model, frames[2:], audio, args.device, "fp32")
        half = ours(model, frames[2:], audio, args.device, args.precision)
        print(f"{name:10s} {ref:15.2f} {fp32:10.2f} {half:10.2f} {half / ref:8.2f}x   (masks/s)")
        del model
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
