"""training/train.py under DDP with 2 CPU processes (gloo): ranks agree on skipping and aborting.

A non-finite loss injected on one rank only must not deadlock the other in the gradient
all-reduce: every rank skips that step (or aborts at the same step), and the replicas stay
identical. Rank 0's final evaluation is slowed past the collective timeout: no rank may be
left waiting for it in a collective.
"""
from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "training" / "configs" / "synthetic_gavs.yaml"
TINY = [
    "data.synthetic.size=64", "data.synthetic.clips={train: 4, val: 1, test: 1, unseen: 1}",
    "train.batch_size=2", "train.max_minutes=0", "train.progress=false", "train.warmup_steps=0",
    "train.threads=1", "eval.conditions=[normal]",
]
JOIN_S = 240  # a deadlocked run is killed after this; pytest-timeout is the backstop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, overrides: list[str], nan_calls, slow_eval_s: float, queue) -> None:
    """One DDP rank: NaN loss on the listed compute_losses calls (None: never, "all": always)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    sys.path.insert(0, str(REPO / "training"))
    import train as train_script

    import avs_core.evaluation
    import avs_core.modeling
    from avs_core.errors import AVSError

    built = {}
    build_model = avs_core.modeling.build_model

    def recording_build(cfg):
        built["model"] = build_model(cfg)
        return built["model"]

    compute_losses = train_script.compute_losses
    calls = [0]

    def injected_losses(*args, **kwargs):
        losses = compute_losses(*args, **kwargs)
        if nan_calls == "all" or (nan_calls is not None and calls[0] in nan_calls):
            losses["bce"] = losses["bce"] * float("nan")
        calls[0] += 1
        return losses

    def slow_evaluate(*args, **kwargs):
        time.sleep(slow_eval_s)
        return {}

    avs_core.modeling.build_model = recording_build
    train_script.compute_losses = injected_losses
    avs_core.evaluation.evaluate_model = slow_evaluate
    cfg = train_script.load_config(str(CONFIG), TINY + overrides)
    try:
        result = train_script.train(cfg, resume=False)["train"]
        outcome = "finished"
    except AVSError as exc:
        result, outcome = str(exc), "aborted"
    # Parameters only: BatchNorm running statistics are rank-local between DDP's buffer broadcasts.
    digest = hashlib.sha256()
    for k, v in sorted(built["model"].named_parameters()):
        digest.update(k.encode())
        digest.update(v.detach().cpu().contiguous().numpy().tobytes())
    queue.put((rank, outcome, result, calls[0], digest.hexdigest()))


def _run_two_ranks(overrides: list[str], nan_calls: dict, slow_eval_s: float = 0.0) -> dict[int, tuple]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, overrides, nan_calls.get(r), slow_eval_s, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    results = {}
    deadline = time.monotonic() + JOIN_S
    try:
        while len(results) < 2 and time.monotonic() < deadline:
            try:
                item = queue.get(timeout=1.0)
            except Exception:  # queue.Empty
                if any(p.exitcode not in (None, 0) for p in procs):
                    break
                continue
            results[item[0]] = item[1:]
    finally:
        for p in procs:
            p.join(timeout=max(1.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
    assert len(results) == 2, f"ranks hung or crashed: got {sorted(results)}, exit codes {[p.exitcode for p in procs]}"
    return results


@pytest.mark.timeout(600)
def test_nonfinite_loss_on_one_rank_is_skipped_on_every_rank(tmp_path):
    # Rank 1 alone sees a NaN loss on its 2nd step. Rank 0's evaluation then outlasts the
    # collective timeout (5 s): nobody may still be waiting in a collective by then.
    overrides = [f"output_dir={tmp_path}", "train.max_steps=4", "train.ckpt_every=2", "train.max_nonfinite=3",
                 "train.dist_timeout_s=5", "eval.splits=[test]"]
    results = _run_two_ranks(overrides, {1: {1}}, slow_eval_s=8.0)
    (o0, r0, c0, w0), (o1, r1, c1, w1) = results[0], results[1]
    assert o0 == o1 == "finished", results
    assert r0["steps"] == r1["steps"] == 4 and c0 == c1 == 4
    assert r0["nonfinite_steps"] == r1["nonfinite_steps"] == 1  # counted on the rank that saw no NaN too
    assert w0 == w1, "replicas diverged: one rank stepped the optimizer while the other skipped"
    saved = torch.load(tmp_path / "state.pt", weights_only=True)
    assert saved["progress"]["nonfinite"] == 1 and len(saved["rng"]) == 2
    assert (tmp_path / "model.safetensors").exists()


@pytest.mark.timeout(600)
def test_repeated_nonfinite_loss_on_one_rank_aborts_every_rank(tmp_path):
    overrides = [f"output_dir={tmp_path}", "train.max_steps=10", "train.ckpt_every=100", "train.max_nonfinite=2",
                 "train.dist_timeout_s=60", "eval.splits=[]"]
    results = _run_two_ranks(overrides, {1: "all"})
    (o0, r0, c0, _), (o1, r1, c1, _) = results[0], results[1]
    assert o0 == o1 == "aborted", results
    assert "non-finite" in r0 and "non-finite" in r1
    assert c0 == c1 == 2  # both stopped at the same step
