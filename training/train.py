#!/usr/bin/env python3
"""Train an AVS model: one plain loop (in the spirit of detectron2's plain_train_net.py).

    python training/train.py --config training/configs/synthetic_gavs.yaml [key=value ...]
    python training/train.py --config ... --resume          # continue exactly where it stopped
    torchrun --nproc_per_node=N training/train.py --config ...  # DDP (NCCL on GPU, gloo on CPU)

The run directory (``output_dir``) receives config.yaml, TensorBoard scalars
(tb/), the training state (state.pt, written atomically every
``train.ckpt_every`` steps), the final model (model.safetensors, via
``avs_core.modeling.save_checkpoint``) and metrics.json from the final
evaluation. The data order is a function of (seed, epoch) only and the state
holds the optimizer, scheduler, step, position in the epoch and every RNG, so
``--resume`` after a kill reproduces the uninterrupted run.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from avs_core.config import apply_overrides, get, load_yaml, merge  # noqa: E402
from avs_core.data.factory import build_dataset  # noqa: E402
from avs_core.data.transforms import Collate  # noqa: E402
from avs_core.errors import AVSError, ConfigError  # noqa: E402

log = logging.getLogger("train")
STATE_FILE = "state.pt"
MODEL_FILE = "model.safetensors"


# ----------------------------------------------------------------------------- setup

def load_config(path: str, overrides: list[str]) -> dict:
    cfg = apply_overrides(load_yaml(path), overrides)
    model = dict(cfg.get("model") or {})
    if "config" in model:  # a model config file, optionally overridden inline
        base = load_yaml(_repo_path(model.pop("config")))
        cfg["model"] = merge(base, model)
    if not cfg.get("model", {}).get("name"):
        raise ConfigError("config needs model.name or model.config (a model YAML)")
    if not cfg.get("output_dir"):
        raise ConfigError("config needs output_dir")
    return cfg


def _repo_path(p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() else REPO / path


def setup_distributed(timeout_s: float = 1800.0) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout_s))
    return rank, world, device


def any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True when ``flag`` holds on at least one rank; every rank gets the same answer.

    Under DDP every rank must take the same branch: one that skipped backward (or stopped)
    alone would leave the others blocked in the next collective.
    """
    t = torch.tensor([float(flag)], device=device)
    if world > 1:
        dist.all_reduce(t)
    return bool(t.item() > 0)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    # Only tensors and primitive containers, so the state loads with weights_only=True.
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(s: dict) -> None:
    random.setstate((s["python"][0], tuple(s["python"][1]), s["python"][2]))
    n = s["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def poly_lr(max_steps: int, warmup: int, power: float):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1.0 - (step - warmup) / max(1, max_steps - warmup)) ** power
    return factor


# ----------------------------------------------------------------------------- losses

def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    return (1 - (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)).mean()


def compute_losses(out: dict, target: torch.Tensor, loss_cfg: dict, seg_loss_in_losses: bool = False) -> dict[str, torch.Tensor]:
    """The weighted loss terms of one batch.

    ``seg_loss_in_losses`` (the model's attribute): the model's own losses already hold its full
    segmentation loss (TeSO's Hungarian-matched Mask2Former loss), so the config's BCE + Dice on
    ``mask_logits`` are not added a second time.
    """
    losses = {}
    if not seg_loss_in_losses:
        logits = out["mask_logits"].float()
        losses["bce"] = float(loss_cfg.get("bce", 1.0)) * F.binary_cross_entropy_with_logits(logits, target)
        losses["dice"] = float(loss_cfg.get("dice", 1.0)) * dice_loss(logits, target)
    aux_scale = loss_cfg.get("aux") or {}
    # Model losses come weighted by the model config; loss.aux.<name> rescales them per run.
    for name, value in (out.get("losses") or {}).items():
        losses[name] = float(aux_scale.get(name, 1.0)) * value.float()
    return losses


# ----------------------------------------------------------------------------- loop

def batches_for_epoch(dataset, batch_size: int, seed: int, epoch: int, rank: int, world: int, skip: int) -> list[list[int]]:
    """This rank's batches of ``epoch``: a pure function of (seed, epoch), minus ``skip`` already done."""
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    batches = [idx[i:i + batch_size] for i in range(0, len(idx) - batch_size + 1, batch_size)]
    if not batches:
        raise ConfigError(f"train.batch_size {batch_size} exceeds the {len(idx)} frames per rank")
    return batches[skip:]


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def train(cfg: dict, resume: bool) -> dict:
    """Run (or resume) training, then save the model and evaluate on rank 0; returns the metrics
    (every rank gets the training counters, rank 0 also the evaluation)."""
    tc = dict(cfg.get("train") or {})
    rank, world, device = setup_distributed(float(tc.get("dist_timeout_s", 1800)))
    try:
        return _train(cfg, resume, tc, rank, world, device)
    finally:
        if dist.is_initialized():  # an abort reached on every rank at the same step, or an error
            dist.destroy_process_group()


def _train(cfg: dict, resume: bool, tc: dict, rank: int, world: int, device: torch.device) -> dict:
    from avs_core.modeling import build_model, save_checkpoint

    out_dir = _repo_path(cfg["output_dir"])
    seed = int(cfg.get("seed", 0))
    max_steps = int(tc.get("max_steps", 1000))
    bs = int(tc.get("batch_size", 8))
    ckpt_every = int(tc.get("ckpt_every", 200))
    log_every = int(tc.get("log_every", 10))
    max_nonfinite = int(tc.get("max_nonfinite", 20))
    max_minutes = float(tc.get("max_minutes", 0) or 0)
    use_amp = bool(tc.get("amp", True)) and device.type == "cuda"
    if tc.get("threads"):
        torch.set_num_threads(int(tc["threads"]))
    if tc.get("deterministic", True):
        torch.use_deterministic_algorithms(True, warn_only=True)

    seed_everything(seed + rank)
    model = build_model(cfg["model"]).to(device)
    dataset = build_dataset(cfg["data"], get(cfg, "data.train_split", "train"), seed=seed, train=True)
    collate = Collate(model.input_size, model.audio_sample_rate, getattr(model, "audio_window_s", 1.0))
    base_lr = float(tc.get("lr", 1e-4))
    optimizer = torch.optim.AdamW(model.param_groups(base_lr), lr=base_lr, weight_decay=float(tc.get("weight_decay", 0.01)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, poly_lr(max_steps, int(tc.get("warmup_steps", 0)), float(tc.get("poly_power", 0.9))))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "nonfinite": 0, "train_seconds": 0.0}

    state_path = out_dir / STATE_FILE
    if resume and state_path.is_file():
        ckpt = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        state.update(ckpt["progress"])
        set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])
        if rank == 0:
            log.info("resumed from %s at step %d (epoch %d, batch %d)", state_path, state["step"], state["epoch"], state["batch_in_epoch"])
    elif resume and rank == 0:
        log.warning("--resume: no %s yet, starting from scratch", state_path)

    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=bool(tc.get("find_unused_parameters", True)))

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out_dir / "tb"))
    loss_cfg = dict(cfg.get("loss") or {})
    bar = tqdm(total=max_steps, initial=state["step"], disable=rank != 0 or not tc.get("progress", True), desc="train")

    def save_state() -> None:
        rngs = [None] * world
        if world > 1:
            dist.all_gather_object(rngs, rng_state())
        else:
            rngs = [rng_state()]
        if rank == 0:
            atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                         "progress": dict(state), "rng": rngs}, state_path)

    model.train()
    t_start = time.monotonic() - state["train_seconds"]
    stop = False
    while state["step"] < max_steps and not stop:
        batches = batches_for_epoch(dataset, bs, seed, state["epoch"], rank, world, state["batch_in_epoch"])
        # Own generator: creating a loader iterator would otherwise draw from the global RNG
        # at a point that differs between an uninterrupted and a resumed run.
        loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate,
                            num_workers=int(tc.get("num_workers", 0)), pin_memory=device.type == "cuda",
                            generator=torch.Generator().manual_seed(seed * 1000 + state["epoch"]))
        for batch in loader:
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                out = net(batch)
            losses = compute_losses(out, batch["target"], loss_cfg, model.seg_loss_in_losses)
            total = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            if not any_rank(not bool(torch.isfinite(total.detach())), world, device):
                scaler.scale(total).backward()
                if tc.get("grad_clip"):
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), float(tc["grad_clip"]))
                scaler.step(optimizer)
                scaler.update()
            else:
                # Still run backward (of zero): under DDP a forward left without backward keeps the
                # reducer waiting, and destroying it after an abort hung the process. The gradients
                # are discarded (no optimizer step; zero_grad before the next backward).
                (total * 0.0).backward()
                state["nonfinite"] += 1  # counted on every rank, so all abort at the same step
                log.warning("non-finite loss at step %d on some rank (here: %s); step skipped on every rank (%d/%d)",
                            state["step"], {k: v.item() for k, v in losses.items()}, state["nonfinite"], max_nonfinite)
                if state["nonfinite"] >= max_nonfinite:
                    raise AVSError(f"{state['nonfinite']} non-finite losses: aborting (train.max_nonfinite)")
            scheduler.step()
            state["step"] += 1
            state["batch_in_epoch"] += 1
            state["train_seconds"] = time.monotonic() - t_start
            if writer is not None and state["step"] % log_every == 0:
                for k, v in losses.items():
                    writer.add_scalar(f"loss/{k}", v.item(), state["step"])
                writer.add_scalar("loss/total", total.item(), state["step"])
                writer.add_scalar("lr", scheduler.get_last_lr()[0], state["step"])
            bar.update(1)
            bar.set_postfix(loss=f"{total.item():.4f}")
            if state["step"] % ckpt_every == 0 or state["step"] >= max_steps:
                save_state()
                if rank == 0:
                    log.info("step %d/%d loss %.4f (%s) lr %.2e, %.0f s", state["step"], max_steps, total.item(),
                             " ".join(f"{k} {v.item():.3f}" for k, v in losses.items()),
                             scheduler.get_last_lr()[0], state["train_seconds"])
            if max_minutes and any_rank(state["train_seconds"] > max_minutes * 60, world, device):
                # A wall-clock budget makes the run length machine-dependent (not resumable bit-exactly).
                log.warning("train.max_minutes=%s reached at step %d; stopping", max_minutes, state["step"])
                save_state()
                stop = True
            if state["step"] >= max_steps or stop:
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    bar.close()
    if world > 1:
        # Every rank is past its last collective (the final save_state). Leaving the group here means
        # rank 0's evaluation below runs with no collective pending, so it cannot hit the timeout.
        dist.barrier()
        dist.destroy_process_group()

    metrics = {"train": {"steps": state["step"], "train_seconds": state["train_seconds"],
                         "nonfinite_steps": state["nonfinite"], "frames": len(dataset)}}
    if rank == 0:
        writer.close()
        save_checkpoint(model, out_dir / MODEL_FILE)
        eval_splits = list(get(cfg, "eval.splits", []) or [])
        if eval_splits:
            from avs_core.evaluation import evaluate_model
            metrics["eval"] = evaluate_model(model, cfg, eval_splits)
        from avs_core.evaluation import dump_json
        dump_json(metrics, out_dir / "metrics.json")
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="training YAML (training/configs/*.yaml)")
    p.add_argument("--resume", action="store_true", help="continue from output_dir/state.pt when it exists")
    p.add_argument("overrides", nargs="*", help="key.sub=value config overrides")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
        metrics = train(cfg, args.resume)
    except AVSError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    if metrics.get("eval"):
        from avs_core.evaluation import format_table
        print(format_table(metrics["eval"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
