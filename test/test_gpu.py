"""GPU readiness: pipeline.precision, frames and features kept on the GPU, memory returned.

Tests marked ``cuda`` run where a CUDA device is present and skip (legitimately, also
under AVS_TEST_STRICT=1) elsewhere; the config check runs everywhere.
"""
from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from avs_core.errors import ConfigError
from avs_core.modeling import ModelPredictor, build_model, load_model_config
from avs_core.pipeline import inference_context, pipeline_config



def needs_cuda(test):
    for mark in (pytest.mark.cuda, pytest.mark.optional("needs a CUDA device"),
                 pytest.mark.skipif(not torch.cuda.is_available(), reason="optional: no CUDA device")):
        test = mark(test)
    return test


@pytest.mark.parametrize("precision", ["fp8", "half", None])
def test_unknown_precision_is_a_config_error(precision):
    with pytest.raises(ConfigError, match="precision"):
        pipeline_config({"precision": precision})


def test_cpu_ignores_half_precision():
    with inference_context("cpu", "fp16"):
        assert not torch.is_autocast_enabled("cuda") and torch.is_inference_mode_enabled()


def _predict(predictor, precision, frame, audio):
    with inference_context("cuda", precision):
        return predictor.predict(frame, audio, 16000, [])


@needs_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_matches_fp32_and_runs_in_half(precision):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, 16000).astype(np.float32)
    full = _predict(ModelPredictor(build_model(load_model_config("tiny/gavs")), device="cuda"), "fp32", frame, audio)
    model = build_model(load_model_config("tiny/gavs"))
    dtypes = []
    hooks = [m.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype)) for m in model.modules()
             if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    predictor = ModelPredictor(model, device="cuda")
    half = _predict(predictor, precision, frame, audio)
    for hook in hooks:
        hook.remove()
    assert half.dtype == np.float32 and half.shape == frame.shape[:2]
    np.testing.assert_allclose(half, full, atol=0.05)
    assert getattr(torch, {"fp16": "float16", "bf16": "bfloat16"}[precision]) in dtypes, "autocast did not reach the model"
    # The frame's image features stay on the GPU for the next audio window of the same frame.
    assert predictor._features is not None and all(t.is_cuda for t in _tensors(predictor._features))


def _tensors(value):
    if torch.is_tensor(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


@needs_cuda
def test_releasing_a_cuda_model_returns_its_memory():
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    predictor = ModelPredictor(build_model(load_model_config("tiny/gavs")), device="cuda")
    frame = np.zeros((240, 320, 3), np.uint8)
    with inference_context("cuda", "fp32"):
        predictor.predict(frame, np.zeros(16000, np.float32), 16000, [])
    assert torch.cuda.memory_allocated() > baseline
    del predictor
    gc.collect()
    torch.cuda.empty_cache()
    assert torch.cuda.memory_allocated() == baseline
