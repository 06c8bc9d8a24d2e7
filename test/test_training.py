"""training/train.py: learning happens, losses/guards behave, kill -9 + --resume is exact, DDP on CPU."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "training"))

import train as train_script  # noqa: E402

from avs_core.errors import AVSError  # noqa: E402

CONFIG = REPO / "training" / "configs" / "synthetic_gavs.yaml"
# Tiny everything: a few clips of 64x64 frames, short runs, two audio conditions.
TINY = [
    "data.synthetic.size=64", "data.synthetic.clips={train: 4, val: 1, test: 1, unseen: 1}",
    "train.batch_size=2", "train.max_minutes=0", "train.progress=false", "train.warmup_steps=0",
    "eval.splits=[test]", "eval.conditions=[normal, mute]", "train.threads=1",
]


def _run(out: Path, extra: list[str], resume: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO / "training" / "train.py"), "--config", str(CONFIG), f"output_dir={out}", *TINY, *extra]
    if resume:
        cmd.append("--resume")
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(p: subprocess.Popen) -> str:
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out[-3000:]
    return out


def test_kill9_then_resume_matches_uninterrupted_run(tmp_path):
    steps = ["train.max_steps=16", "train.ckpt_every=4"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    _finish(_run(ref, steps))
    p = _run(killed, steps)
    state = killed / train_script.STATE_FILE
    deadline = time.monotonic() + 240
    while not state.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.communicate()
    progress = torch.load(state, weights_only=True)["progress"]
    assert 0 < progress["step"] < 16, "the run must be killed between its first checkpoint and its end"
    assert not (killed / train_script.MODEL_FILE).exists()
    _finish(_run(killed, steps, resume=True))
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["eval"] == b["eval"] and a["train"]["steps"] == b["train"]["steps"] == 16
    wa, wb = load_file(str(ref / train_script.MODEL_FILE)), load_file(str(killed / train_script.MODEL_FILE))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # The run directory holds the effective config, TensorBoard scalars and metrics with both conditions.
    assert "max_steps: 16" in (ref / "config.yaml").read_text()
    assert any((ref / "tb").iterdir())
    assert set(a["eval"]["test"]["conditions"]) == {"normal", "mute"}
    # `avs eval` on the saved checkpoint and run config reproduces the end-of-training evaluation.
    from avs_core.cli import main as avs_main

    assert avs_main(["eval", "--checkpoint", str(ref / train_script.MODEL_FILE), "--config", str(ref / "config.yaml"),
                     "--json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text()) == a["eval"]


def test_model_learns_on_one_batch():
    cfg = train_script.load_config(str(CONFIG), TINY)
    from avs_core.data.factory import build_dataset
    from avs_core.data.transforms import Collate
    from avs_core.modeling import build_model

    torch.manual_seed(0)
    model = build_model(cfg["model"]).train()
    ds = build_dataset(cfg["data"], "train")
    # Frames with a sounding object, so the mask loss has something to learn.
    samples = [s for s in (ds[i] for i in range(len(ds))) if s["mask"].any()][:4]
    batch = Collate(model.input_size, model.audio_sample_rate)(samples)
    opt = torch.optim.AdamW(model.param_groups(3e-3))
    first = last = None
    for _ in range(40):
        losses = train_script.compute_losses(model(batch), batch["target"], cfg["loss"])
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        first = first if first is not None else total.item()
        last = total.item()
    assert {"bce", "dice"} <= set(losses)
    assert last < 0.8 * first


def test_dice_loss_values():
    logits = torch.full((1, 1, 4, 4), 20.0)
    assert train_script.dice_loss(logits, torch.ones(1, 1, 4, 4)).item() == pytest.approx(0.0, abs=1e-6)
    assert train_script.dice_loss(-logits, torch.zeros(1, 1, 4, 4)).item() == pytest.approx(0.0, abs=1e-6)
    assert train_script.dice_loss(-logits, torch.ones(1, 1, 4, 4)).item() == pytest.approx(16 / 17, abs=1e-4)


def test_non_finite_losses_are_skipped_then_abort(tmp_path):
    cfg = train_script.load_config(str(CONFIG), TINY + [f"output_dir={tmp_path}", "loss.bce=.nan",
                                                         "train.max_nonfinite=3", "train.max_steps=10"])
    with pytest.raises(AVSError, match="non-finite"):
        train_script.train(cfg, resume=False)


@pytest.mark.parametrize("config, expected", [
    ("synthetic_teso.yaml", {"mask_cls", "infonce"}),  # Mask2Former's matched loss is the segmentation loss
    ("synthetic_gavs.yaml", {"bce", "dice", "align"}),
])
def test_training_loop_adds_the_pixel_loss_only_when_the_model_has_none(tmp_path, monkeypatch, config, expected):
    cfg = train_script.load_config(str(REPO / "training" / "configs" / config),
                                   TINY + [f"output_dir={tmp_path}", "train.max_steps=1", "eval.splits=[]"])
    seen = []
    original = train_script.compute_losses

    def recording(*args, **kwargs):
        losses = original(*args, **kwargs)
        seen.append(set(losses))
        return losses

    monkeypatch.setattr(train_script, "compute_losses", recording)
    train_script.train(cfg, resume=False)
    assert seen == [expected]


def test_ddp_under_torchrun_on_cpu(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "training" / "train.py"), "--config", str(CONFIG), f"output_dir={tmp_path}", *TINY,
           "train.max_steps=2", "train.ckpt_every=1", "eval.splits=[]"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    state = torch.load(tmp_path / train_script.STATE_FILE, weights_only=True)
    assert state["progress"]["step"] == 2 and len(state["rng"]) == 2
    assert (tmp_path / train_script.MODEL_FILE).exists()
