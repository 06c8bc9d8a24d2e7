"""A trained paper model runs through the same AVSPipeline as the zero-shot default."""
import numpy as np
import pytest

from avs_core.errors import AssetError, ConfigError
from avs_core.modeling import build_model, load_model_config, save_checkpoint
from avs_core.pipeline import AVSPipeline
from avs_core.types import Window


@pytest.mark.parametrize("name", ["tiny/gavs", "tiny/teso_sam"])
def test_learned_model_through_pipeline(tmp_path, name):
    model = build_model(load_model_config(name))
    ckpt = save_checkpoint(model, tmp_path / "model.safetensors")
    pipe = AVSPipeline.from_config({"model": name, "checkpoint": str(ckpt), "device": "cpu"})
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (90, 161, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, 48000).astype(np.float32)
    res = pipe(Window(frame=frame, audio=audio, sample_rate=48000, t_start=0.0, t_end=1.0, cues=["dog"]))
    assert res.mask.shape == (90, 161) and res.heatmap.shape == (90, 161)
    assert np.array_equal(res.mask, res.heatmap >= pipe.cfg["mask_threshold"])
    assert "model" in res.timings_ms
    silent = pipe(Window(frame=frame, audio=np.zeros(16000, np.float32), sample_rate=16000, cues=[]))
    assert silent.silent and not silent.mask.any()


def test_learned_model_needs_checkpoint():
    with pytest.raises(ConfigError, match="pipeline.checkpoint"):
        AVSPipeline.from_config({"model": "tiny/gavs"})


def test_missing_checkpoint_file_is_named(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(AssetError, match="nope.safetensors"):
        AVSPipeline.from_config({"model": "tiny/gavs", "checkpoint": str(missing)})
