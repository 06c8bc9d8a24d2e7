"""The asset manifest against the real mirror, the run-time search order, and the errors a user sees."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from avs_core import assets
from avs_core.cli import main
from avs_core.errors import AssetError

SHARED = assets.checkout_mirror()
# Files of the mirror that are documentation, not assets the code loads.
NOT_ASSETS = re.compile(r"^(SOURCE\.md|README.*|LICENSE.*)$")


def shared() -> Path:
    if SHARED is None or not SHARED.is_dir():
        pytest.skip(f"no ../shared/assets beside the checkout ({SHARED})")
    return SHARED


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Three empty folders standing for config assets_dir, the user cache and the checkout mirror."""
    out = {k: tmp_path / k for k in ("configured", "cache", "checkout")}
    for d in out.values():
        d.mkdir()
    monkeypatch.setenv(assets.ENV_VAR, str(out["cache"]))
    monkeypatch.setattr(assets, "checkout_mirror", lambda: out["checkout"])
    monkeypatch.delenv(assets.AUTO_FETCH_ENV, raising=False)
    return out


def _place(root: Path, name: str) -> Path:
    a = assets.MANIFEST[name]
    dst = root / a.folder / a.file
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared() / a.folder / a.file, dst)
    return dst


def test_manifest_lists_every_file_of_the_mirror_with_its_real_size_and_hash():
    root = shared()
    files = {f"{p.parent.name}/{p.name}" for p in root.glob("*/*") if p.is_file() and not NOT_ASSETS.match(p.name)}
    assert files == {a.relpath for a in assets.MANIFEST.values()}
    for a in assets.MANIFEST.values():
        data = (root / a.relpath).read_bytes()
        assert len(data) == a.size and hashlib.sha256(data).hexdigest() == a.sha256, a.name


def test_manifest_urls_are_pinned_origins_recorded_in_source_md():
    root = shared()
    for a in assets.MANIFEST.values():
        m = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)/raw/([0-9a-f]{40})/(\S+)", a.url)
        assert m, a.url
        source = (root / a.folder / "SOURCE.md").read_text()
        owner_repo, commit, _ = m.groups()
        assert owner_repo in source and commit in source and a.path in source and a.sha256 in source, a.name
        assert a.license and a.license in source


def test_logical_names_the_code_uses_are_in_the_manifest():
    assert {"audioset_ontology", "efficientat_mn04", "audioset_labels", "yolox_nano", "deeplabv3_voc",
            "real_sounds/dog_bark_esc10_2-117271-A.ogg"} <= set(assets.MANIFEST)
    assert sum(n.startswith("real_sounds/") for n in assets.MANIFEST) == 27
    assert assets.ASSETS["audioset_ontology"] == ("audioset_ontology", "ontology.json")


def test_every_asset_resolves_and_verifies():
    shared()
    for name in assets.MANIFEST:
        path = assets.resolve(name)
        assert path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == assets.MANIFEST[name].sha256


def test_search_order_config_then_cache_then_checkout(dirs):
    in_checkout = _place(dirs["checkout"], "speech")
    assert assets.resolve("speech", dirs["configured"]) == in_checkout
    in_cache = _place(dirs["cache"], "speech")
    assert assets.resolve("speech", dirs["configured"]) == in_cache
    in_config = _place(dirs["configured"], "speech")
    assert assets.resolve("speech", dirs["configured"]) == in_config
    assert assets.resolve("speech") == in_cache  # no config key: the cache comes first


def test_user_cache_location(tmp_path, monkeypatch):
    monkeypatch.delenv(assets.ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert assets.cache_dir() == tmp_path / "home" / ".cache" / "avs" / "assets"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert assets.cache_dir() == tmp_path / "xdg" / "avs" / "assets"
    monkeypatch.setenv(assets.ENV_VAR, str(tmp_path / "mine"))
    assert assets.cache_dir() == tmp_path / "mine"
    assert [label for label, _ in assets.search_path(tmp_path / "cfg")][:2] == ["config assets_dir", "$AVS_ASSETS_DIR"]


def test_missing_asset_names_it_every_location_the_url_and_the_command(dirs):
    with pytest.raises(AssetError) as err:
        assets.resolve("yolox_nano", dirs["configured"])
    msg = str(err.value)
    a = assets.MANIFEST["yolox_nano"]
    expected = [dirs[k] / "yolox_nano_coco" / "yolox_nano.onnx" for k in ("configured", "cache", "checkout")]
    positions = [msg.index(f"{i}. {p}") for i, p in enumerate(expected, 1)]
    assert positions == sorted(positions)
    assert "'yolox_nano'" in msg and a.url in msg and "`avs assets fetch yolox_nano`" in msg
    assert "\n" not in msg


def test_wrong_sha256_shows_both_hashes_and_the_file_is_not_used(dirs):
    good = _place(dirs["checkout"], "speech")
    bad = _place(dirs["cache"], "speech")
    with open(bad, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02\x03")
    bad_sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(AssetError) as err:
        assets.resolve("speech")
    msg = str(err.value)
    assert assets.MANIFEST["speech"].sha256 in msg and bad_sha in msg and str(bad) in msg
    assert "avs assets fetch speech" in msg
    assert good.is_file()  # a valid copy further down the search path does not mask the corrupt one
    music = _place(dirs["cache"], "music")
    assert assets.resolve("music") == music  # other assets of the folder are unaffected


def test_unknown_asset_name():
    with pytest.raises(AssetError, match="unknown asset"):
        assets.resolve("no_such_asset")


def test_assets_config_section(monkeypatch):
    monkeypatch.setattr(assets, "_policy", {"auto_fetch": False, "mirror": None})
    assets.configure_from({"assets": {"auto_fetch": True, "mirror": "/srv/mirror"}})
    assert assets._policy == {"auto_fetch": True, "mirror": "/srv/mirror"}
    assets.configure_from({"assets": {"auto_fetch": False, "mirror": ""}})  # ROS parameters: '' = unset
    assert assets._policy == {"auto_fetch": False, "mirror": None}
    with pytest.raises(AssetError, match="autofetch"):
        assets.configure_from({"assets": {"autofetch": True}})


def test_cli_list_and_path(dirs, capsys):
    assert main(["assets"]) == 1
    out = capsys.readouterr().out
    assert f"0/{len(assets.MANIFEST)} assets ready" in out and "MISSING" in out and str(dirs["cache"]) in out
    placed = _place(dirs["cache"], "music")
    assert main(["assets", "path", "music"]) == 0
    assert capsys.readouterr().out.strip() == str(placed)
    assert main(["assets", "path", "speech"]) == 2
    assert "avs assets fetch speech" in capsys.readouterr().err
    main(["assets", "list", "--long"])
    out = capsys.readouterr().out
    assert assets.MANIFEST["music"].url in out and assets.MANIFEST["real_sounds/cow_antum_01.flac"].license in out
