import shutil

import pytest

from avs_core import assets
from avs_core.cli import main
from avs_core.errors import AssetError


def test_every_asset_resolves_and_verifies():
    root = assets.assets_dir()
    if not root.is_dir():
        pytest.skip(f"no shared assets at {root}")
    for name in assets.ASSETS:
        path = assets.resolve(name)
        assert path.is_file() and assets.status(name).verified


def test_missing_asset_names_file_location_and_origin(tmp_path):
    with pytest.raises(AssetError) as err:
        assets.resolve("yolox_nano", tmp_path)
    msg = str(err.value)
    assert "yolox_nano.onnx" in msg and str(tmp_path) in msg and "AVS_ASSETS_DIR" in msg


def test_tampered_asset_fails_checksum(tmp_path):
    src = assets.assets_dir() / "audio_samples"
    if not src.is_dir():
        pytest.skip("no shared assets")
    dst = tmp_path / "audio_samples"
    shutil.copytree(src, dst)
    (dst / "speech.wav").chmod(0o644)
    with open(dst / "speech.wav", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(AssetError, match="sha256"):
        assets.resolve("speech", tmp_path)
    assert assets.resolve("music", tmp_path) == dst / "music.wav"


def test_env_var_selects_assets_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.ENV_VAR, str(tmp_path))
    assert assets.assets_dir() == tmp_path.resolve()
    with pytest.raises(AssetError, match=str(tmp_path)):
        assets.resolve("speech")


def test_unknown_asset_name():
    with pytest.raises(AssetError, match="unknown asset"):
        assets.resolve("no_such_asset")


def test_cli_assets_lists_missing(tmp_path, capsys):
    assert main(["assets", "--assets-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "MISSING" in out and f"0/{len(assets.ASSETS)} assets ready" in out
