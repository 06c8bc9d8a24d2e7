"""Download manifest assets into an assets folder: verified, atomic, retried, resumed.

One code path for every source: the asset's pinned origin URL, a mirror base URL
(``http(s)://HOST/PATH/`` laid out ``FOLDER/FILE``) or a local mirror folder (read
through its ``file://`` URL). Bytes go to ``.FILE.part`` beside the target; the target
name appears only by ``os.replace`` after size and sha256 match the manifest, so a
partial, truncated or corrupt download never becomes the asset. A partial download is
resumed with an HTTP Range request where the server honours it; a server that ignores
Range (and ``file://``) restarts from byte 0.
"""
from __future__ import annotations

import contextlib
import http.client
import os
import sys
import time
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

from .assets import Asset, file_sha256
from .errors import AssetError

_CHUNK = 1 << 16
_TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}


class FetchError(AssetError):
    """An asset could not be fetched; the message is one line with the URL and the manual fix."""


class _Transient(Exception):
    """A failure worth another attempt (connection reset, short body, timeout, 5xx)."""


def source_url(asset: Asset, mirror: str | os.PathLike | None = None) -> str:
    """URL of ``asset`` in ``mirror`` (base URL or local folder laid out FOLDER/FILE), else its pinned origin."""
    if not mirror:
        return asset.url
    mirror = str(mirror)
    if "://" in mirror:
        base = mirror
    else:
        folder = Path(mirror).expanduser().resolve()
        if not folder.is_dir():
            raise FetchError(f"mirror folder {folder} does not exist")
        base = folder.as_uri()
    return f"{base.rstrip('/')}/{quote(asset.folder)}/{quote(asset.file)}"


@contextlib.contextmanager
def _locked(path: Path):
    """Exclusive lock so two processes fetching the same asset do not interleave writes."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _progress(asset: Asset, enabled: bool):
    from tqdm import tqdm

    # disable=None: tqdm draws only on a terminal, so logs and CI output stay clean.
    return tqdm(total=asset.size, desc=asset.name, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, disable=None if enabled else True, leave=False)


def _download_once(url: str, part: Path, asset: Asset, timeout: float, bar) -> bool:
    """One request, appending to ``part`` from its current size when the server honours Range.

    Returns whether this attempt resumed a partial file. Raises _Transient for failures
    worth retrying, FetchError for the rest.
    """
    offset = part.stat().st_size if part.exists() else 0
    if offset >= asset.size:  # a complete-but-unverified or oversized leftover: start over
        part.unlink()
        offset = 0
    headers = {"User-Agent": "avs-assets-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:
            part.unlink()
            raise _Transient("server rejected the resume range") from None
        if exc.code in _TRANSIENT_HTTP:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):
            raise FetchError("not found") from None
        raise _Transient(f"cannot connect: {exc.reason}") from None
    with resp:
        resumed = offset > 0 and getattr(resp, "status", None) == 206 \
            and resp.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
        if not resumed:
            offset = 0  # Range ignored (200, file://): the body is the whole file
        bar.reset(total=asset.size)
        bar.update(offset)
        with part.open("ab" if resumed else "wb") as fh:
            while chunk := resp.read1(_CHUNK):  # read1: bytes already received are kept if the link drops
                offset += len(chunk)
                if offset > asset.size:
                    fh.truncate(0)
                    raise FetchError(f"server sent more than the manifest's {asset.size} bytes")
                fh.write(chunk)
                bar.update(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
    if offset < asset.size:
        raise _Transient(f"connection closed after {offset} of {asset.size} bytes")
    return resumed


def is_fetched(asset: Asset, dest_root: str | os.PathLike) -> bool:
    """Whether ``dest_root`` already holds a verified copy of ``asset``."""
    dest = Path(dest_root).expanduser() / asset.folder / asset.file
    return dest.is_file() and file_sha256(dest) == asset.sha256


def fetch(asset: Asset, dest_root: str | os.PathLike, mirror: str | os.PathLike | None = None, *,
          retries: int = 3, retry_wait_s: float = 1.0, timeout_s: float = 30.0, progress: bool = True) -> Path:
    """Fetch ``asset`` into ``dest_root/FOLDER/FILE`` (no-op when a verified copy is there); returns its path."""
    root = Path(dest_root).expanduser()
    dest = root / asset.folder / asset.file
    url = source_url(asset, mirror)
    if is_fetched(asset, root):
        return dest
    manual = (f"manual: download {asset.url} to {dest} and check its sha256 is {asset.sha256}, "
              f"or run `avs assets fetch {asset.name} --from DIR_OR_URL` with a mirror laid out FOLDER/FILE")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{asset.file}.part")
    with _locked(root / ".fetch.lock"), _progress(asset, progress) as bar:
        if is_fetched(asset, root):  # another process fetched it while this one waited for the lock
            return dest
        if dest.exists():  # present but failing its checksum: never leave a bad file under the asset's name
            dest.unlink()
        last, restarted = "", False
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(retry_wait_s * 2 ** (attempt - 1))
            try:
                resumed = _download_once(url, part, asset, timeout_s, bar)
            except _Transient as exc:
                last = str(exc)
                continue
            except (OSError, http.client.HTTPException) as exc:  # reset, timeout, broken framing mid-body
                last = f"{type(exc).__name__}: {exc}"
                continue
            except FetchError as exc:
                part.unlink(missing_ok=True)
                raise FetchError(f"{asset.name} ({asset.relpath}): {exc} at {url}; {manual}") from None
            actual = file_sha256(part)
            if actual == asset.sha256:
                os.replace(part, dest)
                return dest
            part.unlink()
            if resumed and not restarted:  # the bytes kept from an earlier attempt may be the bad ones
                restarted, last = True, f"sha256 mismatch after resuming (got {actual})"
                continue
            raise FetchError(f"{asset.name} ({asset.relpath}): sha256 mismatch for {url}: expected {asset.sha256}, got {actual}; "
                             f"nothing was saved; {manual}")
    kept = f"; {part.stat().st_size} bytes kept in {part} to resume" if part.exists() else ""
    raise FetchError(f"{asset.name} ({asset.relpath}): download failed after {retries + 1} attempts: {last}: {url}{kept}; {manual}")
