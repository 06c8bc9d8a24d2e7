"""ProcessCueProvider: a child that hangs is killed after the request timeout and replaced."""
from __future__ import annotations

import os
import time

import pytest

from avs_core.cues.process_provider import ProcessCueProvider
from avs_core.cues.types import CueProvider, Cues
from avs_core.errors import AVSError


class _ScriptedProvider(CueProvider):
    """Answers with its process id; a stamp of -1 makes it hang, -2 makes the process exit."""

    source = "scripted"

    def compute_batch(self, frames, audios, sample_rate, stamps):
        if stamps[0] == -1:
            time.sleep(3600)
        if stamps[0] == -2:
            os._exit(3)
        return [Cues(texts=(str(os.getpid()),), source=self.source, stamp=s) for s in stamps]


def build_scripted(cfg: dict) -> CueProvider:  # module level: the spawned child unpickles it by name
    return _ScriptedProvider()


def _pid_answer(provider) -> int:
    return int(provider(None, stamp=1.0).texts[0])


@pytest.mark.timeout(300)
def test_hung_child_is_killed_and_the_next_request_gets_a_new_one():
    provider = ProcessCueProvider(build_scripted, {}, start_timeout_s=120, request_timeout_s=2.0)
    try:
        first = _pid_answer(provider)
        assert first == provider.pid and first != os.getpid()
        with pytest.raises(AVSError, match="no answer within 2 s"):
            provider(None, stamp=-1)
        assert provider.pid is None  # the hung child is gone, not left running
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)
        second = _pid_answer(provider)
        assert second != first and provider.restarts == 1
        # A child that dies is replaced the same way.
        with pytest.raises(AVSError, match="died"):
            provider(None, stamp=-2)
        third = _pid_answer(provider)
        assert third not in (first, second) and provider.restarts == 2
    finally:
        provider.close()
    assert provider.pid is None
    with pytest.raises(AVSError, match="closed"):
        provider(None, stamp=1.0)


def test_providers_and_process_provider_do_not_import_each_other():
    import ast
    from pathlib import Path

    import avs_core.cues.process_provider as pp

    tree = ast.parse(Path(pp.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "providers" not in imported and not any(m and m.endswith(".providers") for m in imported)
