"""`avs assets fetch` over real HTTP on 127.0.0.1 and from local mirror folders, with server faults.

The server is http.server in a thread serving the shared assets folder (read-only) with
optional HTTP Range support and one injected fault per file: a flipped byte, a truncated
body, a 404, a connection reset mid-file (every time, or only on the first request).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from avs_core import assets
from avs_core.asset_fetch import FetchError, fetch
from avs_core.cli import main

REPO = Path(__file__).resolve().parent.parent
SMALL = ["real_sounds/car_horn_berklee_1.mp3", "vggish_embedding_sample", "dog_segmentation_mask"]


SHARED = assets.checkout_mirror()  # read before any test hides it


def shared_root() -> Path:
    """The real mirror every test here serves (an asset of the suite: strict mode fails without it)."""
    if SHARED is None or not (SHARED / "images").is_dir():
        pytest.skip(f"no ../shared/assets beside the checkout ({SHARED})")
    return SHARED


class Mirror(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, ranges: bool = True):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.ranges = root, ranges
        self.faults: dict[str, str] = {}  # relpath -> flip | truncate | truncate_once | 404 | reset | reset_once
        self.requests: list[tuple[str, str | None]] = []  # (relpath, Range header)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def handle_error(self, request, client_address):  # resets are intended here
        pass


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv: Mirror = self.server
        rel = unquote(urlparse(self.path).path).lstrip("/")
        srv.requests.append((rel, self.headers.get("Range")))
        fault = srv.faults.get(rel)
        path = srv.root / rel
        if fault == "404" or not path.is_file():
            self.send_error(404)
            return
        data = bytearray(path.read_bytes())
        if fault == "flip":
            data[len(data) // 2] ^= 0xFF
        start, status = 0, 200
        rng = self.headers.get("Range")
        if srv.ranges and rng and rng.startswith("bytes="):
            start, status = int(rng[6:].split("-")[0]), 206
        body = bytes(data[start:])
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes" if srv.ranges else "none")
        self.end_headers()
        if fault in ("truncate", "truncate_once"):
            if fault == "truncate_once":
                srv.faults.pop(rel)
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif fault in ("reset", "reset_once"):
            if fault == "reset_once":
                srv.faults.pop(rel)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            # SO_LINGER 0: close() sends a TCP RST, the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.wfile.write(body)


@pytest.fixture
def mirror():
    srv = Mirror(shared_root())
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache; the checkout mirror is not searched, so only fetched files count."""
    root = tmp_path / "cache"
    monkeypatch.setenv(assets.ENV_VAR, str(root))
    monkeypatch.setattr(assets, "checkout_mirror", lambda: None)
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch(capsys, *argv) -> tuple[int, str, list[str]]:
    rc = main(["assets", "fetch", "--retries", "2", "--retry-wait-s", "0", "--no-progress", *argv])
    out = capsys.readouterr()
    return rc, out.out, [line for line in out.err.splitlines() if line.strip()]


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".fetch.lock")


def test_fetch_over_http_gives_byte_identical_verified_files(mirror, cache, capsys):
    rc, out, err = _fetch(capsys, *SMALL, "--from", mirror.url)
    assert rc == 0 and err == [], err
    for name in SMALL:
        a = assets.MANIFEST[name]
        got = cache / a.folder / a.file
        assert got.read_bytes() == (mirror.root / a.folder / a.file).read_bytes()
        assert assets.resolve(name) == got
    assert _leftovers(cache) == sorted(assets.MANIFEST[n].relpath for n in SMALL)  # no .part files
    rc, out, _ = _fetch(capsys, *SMALL, "--from", mirror.url)
    assert rc == 0 and "0 fetched, 3 already present" in out
    assert len(mirror.requests) == 3  # the second run downloaded nothing


@pytest.mark.parametrize("fault", ["flip", "truncate", "404", "reset"])
def test_server_fault_fails_with_one_line_and_no_asset_file(mirror, cache, capsys, fault):
    asset = assets.MANIFEST["real_sounds/car_horn_berklee_1.mp3"]
    mirror.faults[asset.relpath] = fault
    rc, _, err = _fetch(capsys, asset.name, "--from", mirror.url)
    assert rc != 0
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("avs assets fetch: error: ") and asset.relpath in line
    assert f"{mirror.url}real_sounds/car_horn_berklee_1.mp3" in line and asset.url in line  # mirror URL + manual origin URL
    expected_reason = {"flip": "sha256 mismatch", "truncate": "connection closed after", "404": "HTTP 404",
                       "reset": "Connection"}[fault]
    assert expected_reason in line
    if fault == "flip":
        assert asset.sha256 in line and _sha(mirror.root / asset.relpath) == asset.sha256
    assert not (cache / asset.relpath).exists()
    with pytest.raises(assets.AssetError):
        assets.resolve(asset.name)
    if fault in ("flip", "404"):
        assert _leftovers(cache) == []  # bad bytes are deleted, not kept for a resume


@pytest.mark.parametrize("fault, ranges", [
    ("reset_once", True),      # RST mid-body: the bytes received before it may or may not reach the file
    ("truncate_once", True),   # short body, server honours Range: the second request gets the missing half
    ("truncate_once", False),  # server ignores Range (200, whole body): appending it would corrupt the file
])
def test_interrupted_download_is_retried_and_verified(mirror, cache, capsys, fault, ranges):
    mirror.ranges = ranges
    asset = assets.MANIFEST["dog_segmentation_mask"]
    mirror.faults[asset.relpath] = fault
    rc, _, err = _fetch(capsys, asset.name, "--from", mirror.url)
    assert rc == 0, err
    headers = [r for rel, r in mirror.requests if rel == asset.relpath]
    assert len(headers) == 2 and headers[0] is None
    if fault == "truncate_once":  # half the body arrived: the client asks for the rest
        assert headers[1] == f"bytes={asset.size // 2}-"
    assert (cache / asset.relpath).read_bytes() == (mirror.root / asset.relpath).read_bytes()
    assert _leftovers(cache) == [asset.relpath]


def test_concurrent_fetches_of_one_asset_download_it_once(mirror, cache):
    asset = assets.MANIFEST["bird_segmentation_mask"]
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(fetch(asset, cache, mirror.url, progress=False)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [cache / asset.relpath] * 3
    assert [rel for rel, _ in mirror.requests] == [asset.relpath]  # the waiters found it verified
    assert _sha(cache / asset.relpath) == asset.sha256


def test_local_mirror_folder_lacking_a_file_names_it(tmp_path, cache, capsys):
    src = shared_root()
    partial = tmp_path / "partial_mirror"
    (partial / "avsbench_meta").mkdir(parents=True)
    shutil.copy(src / "avsbench_meta" / "v3.zip", partial / "avsbench_meta" / "v3.zip")
    rc, out, err = _fetch(capsys, "avsbench_v3_splits", "vggish_embedding_sample", "--from", str(partial))
    assert rc == 1 and len(err) == 1
    assert "avsbench_meta/vggish_emb_iSerV5DbY_68000_78000.npy" in err[0] and "not found" in err[0]
    assert (cache / "avsbench_meta" / "v3.zip").read_bytes() == (src / "avsbench_meta" / "v3.zip").read_bytes()
    assert not (cache / "avsbench_meta" / "vggish_emb_iSerV5DbY_68000_78000.npy").exists()
    assert "1 fetched, 0 already present and verified, 1 failed" in out


def test_missing_mirror_folder_and_no_selection_are_errors(tmp_path, cache, capsys):
    assert main(["assets", "fetch", "speech", "--from", str(tmp_path / "nope")]) == 2
    assert "mirror folder" in capsys.readouterr().err
    assert main(["assets", "fetch"]) == 2
    assert "--all" in capsys.readouterr().err


def test_folder_name_selects_its_assets(mirror, cache, capsys):
    rc, out, err = _fetch(capsys, "avsbench_meta", "--from", mirror.url)
    assert rc == 0, err
    assert sorted(p.name for p in (cache / "avsbench_meta").iterdir() if not p.name.startswith(".")) == \
        sorted(p.name for p in (mirror.root / "avsbench_meta").iterdir() if p.suffix in (".zip", ".npy"))


def test_unreachable_origin_gives_url_and_manual_steps(cache):
    asset = dataclasses.replace(assets.MANIFEST["speech"], url="http://127.0.0.1:9/unreachable/speech.wav")
    with pytest.raises(FetchError) as err:
        fetch(asset, cache, retries=1, retry_wait_s=0, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "after 2 attempts" in msg and "cannot connect" in msg
    assert "http://127.0.0.1:9/unreachable/speech.wav" in msg and "manual: download" in msg
    assert str(cache / "audio_samples" / "speech.wav") in msg and asset.sha256 in msg
    assert not (cache / "audio_samples" / "speech.wav").exists()


def test_fetch_replaces_a_corrupt_cached_copy(mirror, cache, capsys):
    asset = assets.MANIFEST["vggish_embedding_sample"]
    bad = cache / asset.relpath
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00" * asset.size)
    with pytest.raises(assets.AssetError, match="sha256"):
        assets.resolve(asset.name)
    rc, _, err = _fetch(capsys, asset.name, "--from", mirror.url)
    assert rc == 0, err
    assert bad.read_bytes() == (mirror.root / asset.relpath).read_bytes()


def test_auto_fetch_is_opt_in(mirror, cache, monkeypatch):
    monkeypatch.setitem(assets._policy, "mirror", mirror.url)
    monkeypatch.delenv(assets.AUTO_FETCH_ENV, raising=False)
    with pytest.raises(assets.AssetError, match="not found"):
        assets.resolve("dog_segmentation_mask")
    assert mirror.requests == []  # nothing downloaded during a plain resolve
    monkeypatch.setenv(assets.AUTO_FETCH_ENV, "1")
    path = assets.resolve("dog_segmentation_mask")
    assert path == cache / "deeplabv3_voc" / "dog_segmentation_mask.bmp"
    assert path.read_bytes() == (mirror.root / "deeplabv3_voc" / "dog_segmentation_mask.bmp").read_bytes()


def test_done_when_empty_assets_dir_fails_then_fetch_over_http_then_segment_works(mirror, tmp_path):
    """A checkout with no ../shared beside it: segment fails naming the asset, fetch fills the dir, segment works."""
    checkout = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "avs_core", checkout / "avs_core", ignore=ignore)
    shutil.copytree(REPO / "config", checkout / "config", ignore=ignore)
    shutil.copy(REPO / "setup.py", checkout / "setup.py")
    empty = tmp_path / "assets"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(checkout), assets.ENV_VAR: str(empty), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop(assets.AUTO_FETCH_ENV, None)
    inputs = mirror.root
    segment = [sys.executable, "-m", "avs_core.cli", "segment", str(inputs / "images" / "grace_hopper.bmp"),
               "--audio", str(inputs / "audio_samples" / "speech.wav"), "--out", str(tmp_path / "out"),
               "--max-windows", "1", "--device", "cpu"]
    run = lambda argv: subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)  # noqa: E731

    first = run(segment)
    assert first.returncode == 2, first.stderr
    err = first.stderr.strip().splitlines()[-1]
    name = next(n for n in assets.MANIFEST if f"asset {n!r}" in err)
    asset = assets.MANIFEST[name]
    assert f"1. {empty / asset.relpath} ($AVS_ASSETS_DIR)" in err
    assert f"2. {tmp_path / 'shared' / 'assets' / asset.relpath} (../shared/assets beside the checkout)" in err
    assert asset.url in err and f"avs assets fetch {name}" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    fetched = run([sys.executable, "-m", "avs_core.cli", "assets", "fetch", "--all", "--from", mirror.url, "--no-progress"])
    assert fetched.returncode == 0, fetched.stderr
    assert f"{len(assets.MANIFEST)} fetched" in fetched.stdout
    for a in assets.MANIFEST.values():
        assert _sha(empty / a.relpath) == a.sha256

    second = run(segment)
    assert second.returncode == 0, second.stderr
    masks = list((tmp_path / "out").glob("*_mask.png"))
    assert len(masks) == 1


def test_pipeline_config_assets_auto_fetch(mirror, cache, monkeypatch):
    """`assets: {auto_fetch, mirror}` in the pipeline config: off by default (fails, downloads nothing), on fetches."""
    from avs_core.pipeline import AVSPipeline

    monkeypatch.setattr(assets, "_policy", {"auto_fetch": False, "mirror": None})
    monkeypatch.delenv(assets.AUTO_FETCH_ENV, raising=False)
    with pytest.raises(assets.AssetError, match="avs assets fetch"):
        AVSPipeline.from_config({"device": "cpu"})
    assert mirror.requests == []
    AVSPipeline.from_config({"device": "cpu", "assets": {"auto_fetch": True, "mirror": mirror.url}})
    fetched = {rel for rel, _ in mirror.requests}
    assert {assets.MANIFEST[n].relpath for n in ("efficientat_mn04", "audioset_labels")} <= fetched
    for rel in fetched:
        assert (cache / rel).read_bytes() == (mirror.root / rel).read_bytes()
    with pytest.raises(assets.AssetError, match="unknown key"):
        AVSPipeline.from_config({"device": "cpu", "assets": {"autofetch": True}})
