"""Run a cue backend in a child process, so a CPU-bound captioner/LLM cannot hold the GIL.

A thread is enough to keep a slow LLM from *blocking* the frame path, but a
transformers ``generate()`` loop spends much of its time in Python and so still
slows every other thread of the process. ``ProcessCueProvider`` builds the
backend with a given builder (``providers.build_cue_provider``) in a spawned
child; ``compute_batch`` sends the inputs over a pipe and waits for the answer,
which releases the GIL.

A child that does not answer within ``request_timeout_s`` is killed and the
request fails with an AVSError; the next request starts a fresh child (as it does
after a crash), so one hung generation cannot stop cue refreshes for good.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from typing import Any, Callable, Mapping

from ..errors import AVSError, ConfigError
from .types import CueProvider, Cues

log = logging.getLogger(__name__)

# Picklable (a module-level function): it is sent to the spawned child, which calls it with the config.
Builder = Callable[[dict], CueProvider]


def _serve(conn, build: Builder, cfg: dict, torch_threads: int | None) -> None:
    """Child process: build the provider, then answer requests until told to stop."""
    if torch_threads:
        import torch

        torch.set_num_threads(int(torch_threads))
    try:
        provider = build(cfg)
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


def _end_child(proc, conn, timeout_s: float, graceful: bool) -> None:
    """Ask the child to stop (graceful), then terminate, then kill whatever still runs."""
    if graceful:
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass
        proc.join(timeout_s)
    for stop in (proc.terminate, proc.kill):
        if proc.is_alive():
            stop()
            proc.join(timeout_s)


class ProcessCueProvider(CueProvider):
    """Proxy to the provider ``build(cfg)`` makes in a child process.

    The child loads its own models; a tagger backend there loads its own tagger
    from the assets (callables such as ``pipe.audio_tags`` cannot cross processes).
    """

    def __init__(self, build: Builder, cfg: Mapping[str, Any], start_timeout_s: float = 600.0,
                 request_timeout_s: float = 300.0, torch_threads: int | None = None):
        if request_timeout_s <= 0:
            raise ConfigError(f"cues.process_timeout_s must be > 0, got {request_timeout_s}")
        self._build, self._cfg = build, dict(cfg)
        self._start_timeout_s, self._request_timeout_s = float(start_timeout_s), float(request_timeout_s)
        self._torch_threads = torch_threads
        self._lock = threading.Lock()
        self._proc = self._conn = None
        self._closed = False
        self.restarts = 0  # children started after the first one (after a hang or a crash)
        self._start()

    @property
    def pid(self) -> int | None:
        """The current child's process id (None while none runs)."""
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")  # fork would copy CUDA state and the parent's threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self._build, self._cfg, self._torch_threads),
                                 name="cue-provider", daemon=True)
        self._proc.start()
        child.close()
        if not self._conn.poll(self._start_timeout_s):
            self._stop()
            raise ConfigError(f"cue provider process did not start within {self._start_timeout_s:.0f} s")
        try:
            reply = self._conn.recv()
        except EOFError:
            self._stop()
            raise AVSError("cue provider process exited while starting (see its log output)") from None
        if reply[0] == "error":
            self._stop()
            raise ConfigError(f"cue provider process could not build its backend: {reply[1]}")
        _, self.source, self.uses_frames, self.uses_audio = reply

    def _stop(self, timeout_s: float = 5.0, graceful: bool = True) -> None:
        if self._proc is not None:
            _end_child(self._proc, self._conn, timeout_s, graceful)
            self._conn.close()
            self._proc = self._conn = None

    def compute_batch(self, frames, audios, sample_rate, stamps) -> list[Cues]:
        with self._lock:
            if self._closed:
                raise AVSError("cue provider process was closed")
            if self._proc is None or not self._proc.is_alive():
                if self._proc is not None:
                    self._stop(graceful=False)
                log.warning("cue provider process gone (hung or died): starting a new one")
                self.restarts += 1
                self._start()
            try:
                self._conn.send((list(frames), list(audios), sample_rate, list(stamps)))
                if not self._conn.poll(self._request_timeout_s):
                    self._stop(graceful=False)
                    raise AVSError(f"cue provider ({self.source}) gave no answer within {self._request_timeout_s:g} s "
                                   "(cues.process_timeout_s): process killed, the next request starts a new one")
                reply = self._conn.recv()
            except (EOFError, OSError) as exc:
                self._stop(graceful=False)  # reaped now, so the next request starts a new child
                raise AVSError(f"cue provider process died: {type(exc).__name__}: {exc}") from None
        if reply[0] == "error":
            raise AVSError(f"cue provider ({self.source}) failed: {reply[1]}")
        return reply[1]

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the child. Safe from another thread while a request waits: that request then fails."""
        self._closed = True
        proc, conn = self._proc, self._conn
        if proc is not None:
            _end_child(proc, conn, timeout_s, graceful=True)
        with self._lock:  # a waiting request has seen the child go and released the lock by now
            self._stop(timeout_s, graceful=False)
