"""Vision backends on the real shared models: DeepLabV3 VOC, YOLOX-Nano COCO, SAM box prompts.

Frame-size policy: every backend returns maps at the input frame's resolution for
any frame to_rgb8 accepts, 1x1 and 8K included; a 1x1 frame gives a valid
(normally empty) result, not an error.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from avs_core.errors import AssetError, ConfigError, InputError
from avs_core.image import read_image
from avs_core.vision.base import ClassMaps
from avs_core.vision.classes import COCO_CLASSES, VOC_CLASSES


def iou(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None = None) -> float:
    valid = np.ones_like(a, bool) if valid is None else valid
    return float((a & b & valid).sum() / ((a | b) & valid).sum())


def check_maps(cm: ClassMaps, h: int, w: int, vocabulary: str) -> None:
    names = VOC_CLASSES if vocabulary == "voc" else COCO_CLASSES
    assert cm.vocabulary == vocabulary and cm.size == (h, w)
    for name, conf in cm.maps.items():
        assert name in names and name != "background"
        assert conf.shape == (h, w) and conf.dtype == np.float32
        assert np.isfinite(conf).all() and conf.min() >= 0.0 and conf.max() <= 1.0
        assert conf.max() > 0.0  # only classes that occupy pixels are listed
        assert np.array_equal(cm.mask(name), conf > 0)


def check_broken_model_file_is_named(backend, path, junk: bytes) -> None:
    """A file that is no model must be an AssetError naming it, not a crash inside the runtime."""
    path.write_bytes(junk)
    with pytest.raises(AssetError, match=path.name):
        backend(path)


@pytest.fixture(scope="module")
def deeplab(asset):
    from avs_core.vision.deeplab import DeepLabV3VOC

    asset("deeplabv3_voc")
    return DeepLabV3VOC.from_config({"num_threads": 2})


@pytest.fixture(scope="module")
def yolox(asset):
    from avs_core.vision.yolox import YoloxCOCO

    asset("yolox_nano")
    return YoloxCOCO.from_config({"num_threads": 2, "score_threshold": 0.35})


@pytest.fixture(scope="module")
def tiny_sam():
    from avs_core.vision.sam import SamBoxSegmenter, build_tiny_sam

    torch.manual_seed(0)
    return SamBoxSegmenter(build_tiny_sam(img_size=256, embed_dim=64, depth=2, prompt_dim=64))


# --- DeepLabV3 (VOC) -------------------------------------------------------------------------


def test_deeplab_bird_iou(deeplab, asset):
    # The Coral ground truth is a VOC label map (3 = bird).
    rgb = read_image(asset("bird_segmentation"))
    truth = cv2.imread(str(asset("bird_segmentation_mask")), cv2.IMREAD_UNCHANGED) == VOC_CLASSES.index("bird")
    cm = deeplab.segment(rgb)
    check_maps(cm, 513, 513, "voc")
    score = iou(cm.mask("bird"), truth)
    print(f"DeepLab bird IoU = {score:.4f}")
    assert score >= 0.85
    assert set(cm.maps) == {"bird"}
    # Confidence is a real softmax probability: high inside the bird, not a constant.
    bird = cm.maps["bird"]
    assert np.median(bird[truth]) > 0.9 and bird[bird > 0].min() < 0.9


def test_deeplab_dog_iou(deeplab, asset):
    # This mask is an Oxford-IIIT-Pet trimap (0 pet, 1 background, 2 uncertain border), so
    # the border band is excluded from the comparison as in that benchmark.
    rgb = read_image(asset("dog_segmentation"))
    trimap = cv2.imread(str(asset("dog_segmentation_mask")), cv2.IMREAD_UNCHANGED)
    cm = deeplab.segment(rgb)
    check_maps(cm, 128, 128, "voc")
    score = iou(cm.mask("dog"), trimap == 0, valid=trimap != 2)
    print(f"DeepLab dog IoU (border ignored) = {score:.4f}")
    assert score >= 0.85


@pytest.mark.parametrize("h, w", [(481, 641), (480, 640), (1000, 301), (4320, 7680)])
def test_deeplab_maps_match_frame_size(deeplab, asset, h, w):
    rgb = cv2.resize(read_image(asset("bird_segmentation")), (w, h), interpolation=cv2.INTER_LINEAR)
    cm = deeplab.segment(rgb)
    check_maps(cm, h, w, "voc")
    assert "bird" in cm.maps
    # The letterbox maps back to the right place: the bird covers roughly the same fraction.
    assert 0.12 < cm.mask("bird").mean() < 0.30


def test_deeplab_accepts_1x1_gray_and_rgba(deeplab, asset):
    check_maps(deeplab.segment(np.full((1, 1, 3), 128, np.uint8)), 1, 1, "voc")
    rgb = read_image(asset("bird_segmentation"))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    check_maps(deeplab.segment(gray), 513, 513, "voc")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.array_equal(deeplab.segment(rgba).mask("bird"), deeplab.segment(rgb).mask("bird"))


def test_deeplab_rejects_bad_frames(deeplab):
    with pytest.raises(InputError):
        deeplab.segment(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(InputError):
        deeplab.segment(np.full((8, 8, 3), np.nan, np.float32))


def test_deeplab_missing_asset_is_named(no_assets):
    from avs_core.vision.deeplab import DeepLabV3VOC

    with pytest.raises(AssetError, match="deeplabv3_mnv2_pascal_quant.tflite"):
        DeepLabV3VOC.from_config({"assets_dir": str(no_assets)})


def test_deeplab_config_and_asset_errors(tmp_path):
    from avs_core.vision.deeplab import DeepLabV3VOC

    with pytest.raises(ConfigError, match="deeplab_variant"):
        DeepLabV3VOC.from_config({"deeplab_variant": "deeplabv4"})
    with pytest.raises(ConfigError, match="num_threads"):
        DeepLabV3VOC.from_config({"num_threads": 0})
    check_broken_model_file_is_named(DeepLabV3VOC, tmp_path / "broken.tflite", b"not a flatbuffer" * 64)


# --- YOLOX-Nano (COCO) -----------------------------------------------------------------------


def _reference_detections(model_path, rgb: np.ndarray, size: int = 416, score_thr: float = 0.35,
                          nms_thr: float = 0.45) -> list[tuple[str, float, tuple[float, ...]]]:
    """YOLOX run by onnxruntime and decoded here from the YOLOX paper / reference demo: letterbox
    (ratio = min(size/h, size/w), top-left, pad 114, BGR 0-255), then per anchor point of the
    stride-8/16/32 grids centre = (t_xy + grid) * stride, size = exp(t_wh) * stride, score =
    objectness * class probability, class-wise NMS (torchvision). Shares no code with avs_core."""
    import onnxruntime as ort
    from torchvision.ops import batched_nms

    h, w = rgb.shape[:2]
    r = min(size / h, size / w)
    img = np.full((size, size, 3), 114, np.uint8)
    img[: int(h * r), : int(w * r)] = cv2.resize(rgb, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
    x = np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)[None], np.float32)
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]
    grids, strides = [], []
    for s in (8, 16, 32):
        n = size // s
        gy, gx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([gx.ravel(), gy.ravel()], 1))
        strides.append(np.full(n * n, s))
    grid, stride = np.concatenate(grids), np.concatenate(strides)[:, None]
    cxcy = (out[:, :2] + grid) * stride
    wh = np.exp(out[:, 2:4]) * stride
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1) / r
    cls = out[:, 5:].argmax(1)
    score = out[:, 4] * out[np.arange(len(out)), 5 + cls]
    keep = score >= score_thr
    boxes, cls, score = boxes[keep], cls[keep], score[keep]
    idx = batched_nms(torch.from_numpy(boxes).float(), torch.from_numpy(score).float(), torch.from_numpy(cls), nms_thr)
    return [(COCO_CLASSES[cls[i]], float(score[i]), tuple(np.clip(boxes[i], 0, [w, h, w, h]))) for i in idx.tolist()]


def test_yolox_matches_an_independent_runtime_and_decoder(yolox, asset):
    rgb = read_image(asset("yolox_dog"))
    ref = _reference_detections(asset("yolox_nano"), rgb)
    dets = yolox.detect(rgb)
    assert len(dets) == len(ref) >= 3
    for d, (label, score, box) in zip(dets, ref):
        assert d.label == label
        assert d.score == pytest.approx(score, abs=2e-3)
        assert d.box == pytest.approx(box, abs=1.5)  # frame pixels (768x576)


def test_yolox_finds_dog_bicycle_car(yolox, asset):
    rgb = read_image(asset("yolox_dog"))
    dets = yolox.detect(rgb)
    print("YOLOX dog.jpg:", [(d.label, round(d.score, 3)) for d in dets])
    best = {}
    for d in dets:
        best.setdefault(d.label, d)
    assert {"dog", "bicycle", "car"} <= set(best)
    for label in ("dog", "bicycle", "car"):
        assert best[label].score > 0.7
    # Boxes are in frame pixels (768x576): the dog sits lower left, the car upper right.
    x1, y1, x2, y2 = best["dog"].box
    assert 0 <= x1 < x2 <= 400 and 150 < y1 < y2 <= 576
    cx = (best["car"].box[0] + best["car"].box[2]) / 2
    assert cx > 500 and best["car"].box[3] < 250
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


def test_yolox_maps_fill_boxes_with_scores(yolox, asset):
    rgb = cv2.resize(read_image(asset("yolox_dog")), (641, 481))
    cm = yolox.segment(rgb)
    check_maps(cm, 481, 641, "coco")
    ref = _reference_detections(asset("yolox_nano"), rgb)
    assert set(cm.maps) == {label for label, _, _ in ref}
    for label, conf in cm.maps.items():
        top = max(score for lab, score, _ in ref if lab == label)
        assert conf.max() == pytest.approx(top, abs=2e-3)
    x1, y1, x2, y2 = next(box for lab, _, box in ref if lab == "car")
    assert cm.maps["car"][int((y1 + y2) / 2), int((x1 + x2) / 2)] > 0
    assert cm.maps["car"][470, 5] == 0.0


def test_yolox_tiny_and_huge_frames(yolox, asset):
    assert yolox.segment(np.zeros((1, 1, 3), np.uint8)).maps == {}
    big = cv2.resize(read_image(asset("yolox_dog")), (7680, 4320))
    check_maps(yolox.segment(big), 4320, 7680, "coco")


def test_yolox_missing_asset_is_named(no_assets):
    from avs_core.vision.yolox import YoloxCOCO

    with pytest.raises(AssetError, match="yolox_nano.onnx"):
        YoloxCOCO.from_config({"assets_dir": str(no_assets)})


def test_yolox_config_errors(tmp_path):
    from avs_core.vision.yolox import YoloxCOCO

    with pytest.raises(ConfigError, match="score_threshold"):
        YoloxCOCO.from_config({"score_threshold": 1.5})
    check_broken_model_file_is_named(YoloxCOCO, tmp_path / "broken.onnx", b"\x00garbage" * 64)


def test_yolox_with_sam_gives_masks_at_frame_size(asset, tiny_sam):
    from avs_core.vision.yolox import YoloxCOCO

    yolox = YoloxCOCO(asset("yolox_nano"), score_threshold=0.35, sam=tiny_sam)
    rgb = cv2.resize(read_image(asset("yolox_dog")), (641, 481))
    cm = yolox.segment(rgb)
    assert "sam" in cm.timings_ms
    check_maps(cm, 481, 641, "coco")
    ref = _reference_detections(asset("yolox_nano"), rgb)
    for label, conf in cm.maps.items():  # SAM only reshapes the region; values stay detection scores
        scores = np.array([score for lab, score, _ in ref if lab == label])
        for v in np.unique(conf[conf > 0]):
            assert np.abs(scores - v).min() < 2e-3


# --- Segment Anything box prompts ------------------------------------------------------------


def test_tiny_sam_masks_at_original_size(tiny_sam):
    rgb = np.random.default_rng(0).integers(0, 256, (481, 641, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 200, 300], [300, 100, 640, 480], [0, 0, 640, 480], [5, 5, 50, 50], [100, 100, 101, 101]])
    masks, quality = tiny_sam.segment_boxes(rgb, boxes)  # 5 boxes: more than one decoder pass
    assert masks.shape == (5, 481, 641) and masks.dtype == bool
    assert quality.shape == (5,) and np.isfinite(quality).all()
    single, _ = tiny_sam.segment_boxes(rgb, boxes[4])
    # A box's mask does not depend on its batch (up to float rounding at the 0 logit boundary).
    assert (single[0] != masks[4]).mean() < 1e-3
    masks, quality = tiny_sam.segment_boxes(rgb, np.zeros((0, 4)))
    assert masks.shape == (0, 481, 641) and quality.shape == (0,)
    masks, _ = tiny_sam.segment_boxes(np.zeros((1, 1), np.uint8), [0, 0, 1, 1])
    assert masks.shape == (1, 1, 1)


def test_tiny_sam_rejects_bad_boxes(tiny_sam):
    rgb = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(InputError):
        tiny_sam.segment_boxes(rgb, [[0, 0, np.nan, 4]])
    with pytest.raises(InputError):
        tiny_sam.segment_boxes(rgb, [[0, 0, 4]])


def test_build_tiny_sam_validates_sizes():
    from avs_core.vision.sam import build_tiny_sam

    with pytest.raises(ValueError):
        build_tiny_sam(img_size=250)


def test_missing_sam_checkpoint_names_path_and_key(tmp_path):
    from avs_core.vision.sam import SamBoxSegmenter, load_sam_checkpoint

    missing = tmp_path / "sam_vit_b_01ec64.pth"
    with pytest.raises(AssetError) as err:
        SamBoxSegmenter.from_config({"sam_checkpoint": str(missing), "sam_model_type": "vit_b"})
    assert str(missing) in str(err.value) and "vision.sam_checkpoint" in str(err.value)
    with pytest.raises(AssetError, match="vision.sam_checkpoint"):
        SamBoxSegmenter.from_config({})
    with pytest.raises(ConfigError, match="sam_model_type"):
        load_sam_checkpoint(missing, "vit_xl")


def test_unusable_sam_checkpoints(tmp_path):
    from avs_core.vision.sam import build_tiny_sam, load_sam_checkpoint

    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a zip archive" * 32)
    with pytest.raises(AssetError, match="corrupt.pth"):
        load_sam_checkpoint(corrupt)
    # Strict key matching: weights of another architecture are refused, not half-loaded.
    wrong = tmp_path / "tiny.pth"
    torch.save(build_tiny_sam().state_dict(), wrong)
    with pytest.raises(AssetError, match="not a SAM vit_b checkpoint"):
        load_sam_checkpoint(wrong, "vit_b")
