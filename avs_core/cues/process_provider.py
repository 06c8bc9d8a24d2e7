"""Run a cue backend in a child process, so a CPU-bound captioner/LLM cannot hold the GIL.

A thread is enough to keep a slow LLM from *blocking* the frame path, but a
transformers ``generate()`` loop spends much of its time in Python and so still
slows every other thread of the process. ``ProcessCueProvider`` builds the
backend (``build_cue_provider``) in a spawned child; ``compute_batch`` sends the
inputs over a pipe and waits for the answer, which releases the GIL.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from typing import Any, Mapping

from ..errors import AVSError, ConfigError
from .types import CueProvider, Cues

log = logging.getLogger(__name__)


def _serve(conn, cfg: dict, torch_threads: int | None) -> None:
    """Child process: build the provider, then answer requests until told to stop."""
    if torch_threads:
        import torch

        torch.set_num_threads(int(torch_threads))
    from .providers import build_cue_provider

    try:
        provider = build_cue_provider(cfg)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", provider.source, provider.uses_frames, provider.uses_audio))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        try:
            conn.send(("ok", provider.compute_batch(*request)))
        except Exception as exc:  # noqa: BLE001 - one failed batch must not end the service
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class ProcessCueProvider(CueProvider):
    """Proxy to a provider built from ``cfg`` (the ``cues`` section) in a child process.

    The child loads its own models; a tagger backend there loads its own tagger
    from the assets (callables such as ``pipe.audio_tags`` cannot cross processes).
    """

    def __init__(self, cfg: Mapping[str, Any], start_timeout_s: float = 600.0, torch_threads: int | None = None):
        ctx = mp.get_context("spawn")  # fork would copy CUDA state and the parent's threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, dict(cfg), torch_threads), name="cue-provider", daemon=True)
        self._proc.start()
        child.close()
        self._lock = threading.Lock()
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise ConfigError(f"cue provider process did not start within {start_timeout_s:.0f} s")
        try:
            reply = self._conn.recv()
        except EOFError:
            self.close()
            raise AVSError("cue provider process exited while starting (see its log output)") from None
        if reply[0] == "error":
            self.close()
            raise ConfigError(f"cue provider process could not build its backend: {reply[1]}")
        _, self.source, self.uses_frames, self.uses_audio = reply

    def compute_batch(self, frames, audios, sample_rate, stamps) -> list[Cues]:
        with self._lock:
            if not self._proc.is_alive():
                raise AVSError(f"cue provider process is not running (exit code {self._proc.exitcode})")
            try:
                self._conn.send((list(frames), list(audios), sample_rate, list(stamps)))
                reply = self._conn.recv()
            except (EOFError, OSError) as exc:
                raise AVSError(f"cue provider process died: {type(exc).__name__}: {exc}") from None
        if reply[0] == "error":
            raise AVSError(f"cue provider ({self.source}) failed: {reply[1]}")
        return reply[1]

    def close(self, timeout_s: float = 5.0) -> None:
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout_s)
        self._conn.close()
