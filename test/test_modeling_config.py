"""Model registry and configs: clear errors naming the config key for every missing backbone."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from avs_core.config import merge
from avs_core.errors import AssetError, ConfigError
from avs_core.modeling import MODEL_NAMES, build_model, load_model_config, read_metadata, save_checkpoint
from avs_core.modeling.checkpoint import load_checkpoint


@pytest.mark.parametrize("name,key", [("gavs", "sam.checkpoint"), ("av2t_sam", "sam.checkpoint"),
                                      ("teso", "mask2former.path"), ("teso_sam", "sam.checkpoint")])
def test_real_configs_name_the_missing_backbone(name, key, tmp_path):
    cfg = load_model_config(name)
    missing = tmp_path / "nowhere" / "weights.pth"
    section, field = key.split(".")
    cfg[section][field] = str(missing)
    with pytest.raises(AssetError) as err:
        build_model(cfg)
    assert key in str(err.value) and str(missing) in str(err.value)


@pytest.mark.parametrize("name,key", [
    ("gavs", "audio_encoder.weights"), ("teso_sam", "text_encoder.path"), ("av2t_sam", "clip.path"),
    ("av2t_sam", "clap.path"), ("av2t_sam", "text_encoder.path"),
])
def test_tiny_model_with_one_real_backbone_missing(name, key, tmp_path):
    section, field = key.split(".")
    override = {section: {field: str(tmp_path / "missing")}}
    if section == "audio_encoder":
        override[section]["type"] = "vggish"
    cfg = merge(load_model_config(f"tiny/{name}"), override)
    cfg[section].pop("tiny", None)
    with pytest.raises(AssetError, match=key.replace(".", r"\.")):
        build_model(cfg)


def test_unset_path_is_reported():
    cfg = load_model_config("tiny/teso")
    cfg["mask2former"] = {}
    with pytest.raises(AssetError, match=r"mask2former\.path"):
        build_model(cfg)


def test_unknown_names_and_options():
    with pytest.raises(ConfigError, match="name"):
        build_model({"name": "nope"})
    with pytest.raises(ConfigError, match=r"sam\.variant"):
        build_model({"name": "gavs", "sam": {"variant": "vit_x", "checkpoint": "x"}})
    with pytest.raises(ConfigError, match=r"av2t\.fusion"):
        build_model(merge(load_model_config("tiny/av2t_sam"), {"av2t": {"fusion": "sum"}}))
    with pytest.raises(ConfigError, match=r"audio_encoder\.type"):
        build_model(merge(load_model_config("tiny/gavs"), {"audio_encoder": {"type": "wav2vec"}}))


def test_every_model_has_real_and_tiny_configs():
    for name in MODEL_NAMES:
        assert load_model_config(name)["name"] == name
        assert load_model_config(f"tiny/{name}")["name"] == name


def test_av2t_ablations_build_without_the_other_backbone():
    clap_only = build_model(merge(load_model_config("tiny/av2t_sam"), {"av2t": {"fusion": "clap"}, "clip": None}))
    assert clap_only.clip is None and clap_only.clap is not None
    clip_only = build_model(merge(load_model_config("tiny/av2t_sam"), {"av2t": {"fusion": "clip"}, "clap": None}))
    assert clip_only.clap is None and clip_only.clip is not None
    batch = {"image": torch.rand(2, 3, 128, 128), "audio": torch.zeros(2, 16000)}
    assert clap_only(batch)["mask_logits"].shape == (2, 1, 128, 128)
    assert clip_only(batch)["mask_logits"].shape == (2, 1, 128, 128)


def test_checkpoint_metadata_and_mismatch(tmp_path):
    model = build_model(load_model_config("tiny/gavs"))
    path = save_checkpoint(model, tmp_path / "g.safetensors", extra={"epoch": 3})
    meta = read_metadata(path)
    assert meta["format_version"] == "1" and meta["model"] == "gavs" and meta["extra"] == {"epoch": 3}
    assert meta["config"]["name"] == "gavs"
    other = build_model(load_model_config("tiny/teso_sam"))
    with pytest.raises(AssetError, match="gavs"):
        load_checkpoint(path, model=other)
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad), metadata={"format_version": "0", "config": "{}"})
    with pytest.raises(AssetError, match="format version"):
        read_metadata(bad)
    with pytest.raises(AssetError, match="not found"):
        read_metadata(tmp_path / "none.safetensors")


def test_every_local_model_problem_is_one_asset_error_naming_the_key(tmp_path):
    from transformers import AutoConfig

    from avs_core.local_models import from_pretrained, local_path

    (tmp_path / "weights.pt").write_bytes(b"x")
    assert local_path(tmp_path / "weights.pt", "m.checkpoint") == tmp_path / "weights.pt"
    bad_dir = tmp_path / "broken"
    bad_dir.mkdir()
    (bad_dir / "config.json").write_text("{not json")
    cases = [
        lambda: local_path(None, "m.checkpoint"),
        lambda: local_path(tmp_path / "missing.pt", "m.checkpoint"),
        lambda: local_path(tmp_path / "weights.pt", "m.checkpoint", "directory"),
        lambda: local_path(tmp_path, "m.checkpoint", "transformers"),  # a directory, but no config.json
        lambda: from_pretrained(bad_dir, "m.checkpoint", [(AutoConfig, {})]),  # unreadable config.json
    ]
    for case in cases:
        with pytest.raises(AssetError, match="config key 'm.checkpoint'"):
            case()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shipped_configs_pass_the_key_check(name):
    from avs_core.modeling.build import check_model_config

    check_model_config(load_model_config(name))
    check_model_config(load_model_config(f"tiny/{name}"))


@pytest.mark.parametrize("override, message", [
    ({"adpater_blocks": 2}, r"unknown key 'adpater_blocks'.*valid keys: name, seed"),
    ({"gavs": {"adapter_block": 2}}, r"unknown key 'gavs.adapter_block'.*valid keys of 'gavs': adapter_blocks"),
    ({"sam": {"checkpiont": "x.pth"}}, r"'sam.checkpiont'.*checkpoint, tiny, variant"),
    ({"gavs": 3}, r"'gavs' must be a mapping"),
])
def test_misspelt_model_config_keys_are_rejected_with_the_valid_ones(override, message):
    cfg = merge(load_model_config("tiny/gavs"), override)
    with pytest.raises(ConfigError, match=message):
        build_model(cfg)
