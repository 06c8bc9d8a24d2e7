"""The four paper models on tiny random backbones: predictor shapes, what trains, checkpoints, learning."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avs_core.config import merge
from avs_core.errors import InputError
from avs_core.modeling import ModelPredictor, build_model, load_checkpoint, load_model_config, save_checkpoint

NAMES = ("gavs", "av2t_sam", "teso", "teso_sam")

# Parameter-name prefixes that must train (everything else must be frozen).
TRAINABLE = {
    "gavs": ("sap.", "audio_encoder.", "sam.mask_decoder.", "sam.image_encoder.blocks.2.mlp.adapter.",
             "sam.image_encoder.blocks.3.mlp.adapter."),
    "av2t_sam": ("sam.mask_decoder.", "vision_proj.", "audio_proj.", "to_text_space.", "text_to_prompt.",
                 "block_prompts."),
    "teso": ("adapters.", "m2f.class_predictor.", "prompter.sedam.", "prompter.pmqs.", "prompter.audio_encoder."),
    "teso_sam": ("adapters.", "prompter.sedam.", "prompter.pmqs.", "prompter.audio_encoder.", "sam.mask_decoder."),
}
# Inside a trained SAM mask decoder, the heads of unused outputs stay frozen.
FROZEN_IN_DECODER = ("sam.mask_decoder.iou_prediction_head.", "sam.mask_decoder.output_hypernetworks_mlps.1.",
                     "sam.mask_decoder.output_hypernetworks_mlps.2.", "sam.mask_decoder.output_hypernetworks_mlps.3.")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def tiny(name: str, **overrides) -> dict:
    return merge(load_model_config(f"tiny/{name}"), overrides)


def synthetic_batch(size: int, n: int = 4, seed: int = 0) -> dict:
    """Red squares; even samples play a tone and their square is the target, odd samples are silent."""
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(n, 3, size, size, generator=g) * 0.3
    target = torch.zeros(n, 1, size, size)
    audio = torch.randn(n, 16000, generator=g) * 1e-4
    t = torch.arange(16000) / 16000
    side = size * 3 // 8
    for i in range(n):
        x0, y0 = (int(v) for v in torch.randint(0, size - side, (2,), generator=g))
        img[i, :, y0:y0 + side, x0:x0 + side] = torch.tensor([0.9, 0.2, 0.2])[:, None, None]
        if i % 2 == 0:
            audio[i] = 0.5 * torch.sin(2 * math.pi * 440 * t)
            target[i, :, y0:y0 + side, x0:x0 + side] = 1
    return {"image": img, "audio": audio, "cues": [["guitar", "dog"], []] * (n // 2), "target": target}


def seg_loss(out: dict, target: torch.Tensor) -> torch.Tensor:
    logits = out["mask_logits"]
    p = logits.sigmoid()
    dice = 1 - (2 * (p * target).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return F.binary_cross_entropy_with_logits(logits, target) + dice.mean() + sum(out["losses"].values())


@pytest.fixture(scope="module", params=NAMES)
def model(request):
    return build_model(tiny(request.param))


def test_forward_contract(model):
    batch = synthetic_batch(model.input_size)
    model.train()
    out = model(batch)
    assert out["mask_logits"].shape == (4, 1, model.input_size, model.input_size)
    assert torch.isfinite(out["mask_logits"]).all()
    for name, value in out["losses"].items():
        assert value.ndim == 0 and torch.isfinite(value), name
    expected_losses = {"gavs": {"align"}, "av2t_sam": set(), "teso": {"infonce", "mask_cls"}, "teso_sam": {"infonce"}}
    assert set(out["losses"]) == expected_losses[model.name]
    model.eval()


@pytest.mark.parametrize("hw", [(90, 160), (200, 120), (128, 128)])
def test_predictor_returns_probabilities_at_frame_size(model, hw):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    audio = rng.standard_normal(24000).astype(np.float32) * 0.1
    prob = ModelPredictor(model).predict(frame, audio, 24000, ["dog"])
    assert prob.shape == hw and prob.dtype == np.float32
    assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1


def test_predictor_encodes_each_frame_once(model, monkeypatch):
    model = build_model(tiny(model.name))
    torch.manual_seed(0)
    with torch.no_grad():  # leave the identity initialisation (zero adapters / zero PMQS output) behind
        for p in model.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.1)
    predictor = ModelPredictor(model)
    calls = []
    original = model.encode_image
    monkeypatch.setattr(model, "encode_image", lambda x, valid_hw=None: calls.append(1) or original(x, valid_hw))
    frame = np.zeros((60, 80, 3), np.uint8)
    silent, tone = np.zeros(16000, np.float32), np.sin(np.arange(16000, dtype=np.float32) * 0.2)
    cues = ["dog", "guitar", "car", "piano"]  # several cues: Eq. 4 may mask some of them
    a = predictor.predict(frame, silent, 16000, cues)
    b = predictor.predict(frame, tone, 16000, cues)
    assert len(calls) == 1
    assert not np.array_equal(a, b)  # the audio reaches the output
    predictor.predict(frame + 1, tone, 16000, cues)
    assert len(calls) == 2


def test_predictor_rejects_bad_input(model):
    predictor = ModelPredictor(model)
    # Frames go through avs_core.image.to_rgb8: any layout it normalises is fine, garbage is not.
    assert predictor.predict(np.zeros((10, 10), np.uint8), np.zeros(100, np.float32), 16000, []).shape == (10, 10)
    with pytest.raises(InputError):
        predictor.predict(np.full((10, 10, 3), 2.0, np.float32), np.zeros(100, np.float32), 16000, [])
    with pytest.raises(InputError):
        predictor.predict(np.zeros((0, 10, 3), np.uint8), np.zeros(100, np.float32), 16000, [])
    with pytest.raises(InputError):
        predictor.predict(np.zeros((10, 10, 3), np.uint8), np.full(100, np.nan, np.float32), 16000, [])
    if model.requires_cues:
        with pytest.raises(InputError):
            predictor.predict(np.zeros((10, 10, 3), np.uint8), np.zeros(100, np.float32), 16000, None)


@pytest.mark.parametrize("name", NAMES)
def test_exactly_the_intended_parameters_train(name):
    model = build_model(tiny(name))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    for n, _ in model.named_parameters():
        should = n.startswith(TRAINABLE[name]) and not n.startswith(FROZEN_IN_DECODER)
        assert (n in names) == should, n
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(model.param_groups(1e-3))
    model.train()
    for _ in range(2):  # zero-initialised adapter up-projections pass gradient on from the second step
        opt.zero_grad()
        seg_loss(model(synthetic_batch(model.input_size)), synthetic_batch(model.input_size)["target"]).backward()
        for n, p in model.named_parameters():
            assert (p.grad is not None) == (n in names), n
        opt.step()
    for n, p in model.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), f"frozen {n} changed"
    changed = [n for n in trained_before if not torch.equal(trained_before[n], dict(model.named_parameters())[n])]
    assert len(changed) == len(trained_before), sorted(set(trained_before) - set(changed))


def test_gavs_sam_fully_frozen_when_decoder_not_trained():
    model = build_model(tiny("gavs", gavs={"train_mask_decoder": False}))
    sam_trainable = {n for n, p in model.named_parameters() if p.requires_grad and n.startswith("sam.")}
    assert sam_trainable and all(".adapter." in n for n in sam_trainable)
    assert any(n.startswith("sam.mask_decoder.transformer.layers.") for n in sam_trainable)


def test_teso_param_groups_follow_paper_ratio():
    model = build_model(tiny("teso"))
    groups = model.param_groups(1e-3)
    assert sorted(g["lr"] for g in groups) == pytest.approx([1e-4, 1e-3])
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(model.trainable_parameters())
    # Eq. 8-9 weights lambda_bce, lambda_dice, lambda_cls = 5, 5, 2 drive Mask2Former's matched loss.
    c = model.m2f.config
    assert (c.mask_weight, c.dice_weight, c.class_weight) == (5.0, 5.0, 2.0)
    assert model.seg_loss_in_losses


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_is_bit_exact(name, tmp_path):
    model = build_model(tiny(name))
    opt = torch.optim.AdamW(model.param_groups(1e-2))
    batch = synthetic_batch(model.input_size)
    model.train()
    opt.zero_grad()
    seg_loss(model(batch), batch["target"]).backward()
    opt.step()
    model.eval()
    path = save_checkpoint(model, tmp_path / f"{name}.safetensors", extra={"step": 1})
    restored = load_checkpoint(path)
    fresh = build_model(tiny(name)).eval()
    with torch.no_grad():
        a = model(batch)["mask_logits"]
        b = restored(batch)["mask_logits"]
        c = fresh(batch)["mask_logits"]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # the trained weights really came from the file


@pytest.mark.parametrize("name", NAMES)
def test_loss_decreases_on_a_fixed_batch(name):
    model = build_model(tiny(name))
    batch = synthetic_batch(model.input_size)
    opt = torch.optim.AdamW(model.param_groups(3e-3))
    model.train()
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = seg_loss(model(batch), batch["target"])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0], losses


@pytest.mark.parametrize("name", ["gavs", "teso_sam"])
def test_predictor_feeds_sam_what_sam_preprocess_makes(name):
    """The SAM encoder input equals segment_anything's own SamPredictor resize + Sam.preprocess."""
    from segment_anything.utils.transforms import ResizeLongestSide

    model = build_model(tiny(name)).eval()
    sam = model.sam
    seen = []
    hook = sam.image_encoder.patch_embed.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    frame = np.random.default_rng(3).integers(0, 256, (45, 80, 3), dtype=np.uint8)  # landscape: pads the bottom
    try:
        ModelPredictor(model).predict(frame, np.zeros(16000, np.float32), 16000, [])
    finally:
        hook.remove()
    resized = ResizeLongestSide(sam.image_encoder.img_size).apply_image(frame)
    with torch.no_grad():
        expected = sam.preprocess(torch.as_tensor(resized).permute(2, 0, 1)[None].float())
    assert resized.shape[0] < sam.image_encoder.img_size  # there is padding to compare
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=1e-4)
    assert (seen[0][..., resized.shape[0]:, :] == 0).all()  # zeros after normalising, not -mean/std
