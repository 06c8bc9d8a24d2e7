"""The frame path keeps running while cues refresh in the background.

Runs the real zero-shot pipeline on a shared image + speech, the way the node's
worker does (offer -> latest -> pipeline), with no refresher, with a tagger
refresher, and with a deliberately slow captioner+reasoner refresher (tiny random
models, period 0: always busy) in a thread and in a child process. Prints the
per-frame times (run with -s); asserts only that every frame produced a result
and that cues arrived meanwhile, never on wall-clock time.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from avs_core.cues.providers import build_cue_provider
from avs_core.cues.refresher import CueRefresher
from avs_core.cues.tagger_cues import TaggerCueProvider
from avs_core.types import Window

from conftest import asset_path
from cues_tiny_models import save_tiny_blip, save_tiny_llm

BLOCK = 4  # frames per block
ROUNDS = 2  # inactive/active block pairs, interleaved so machine load hits both alike


@pytest.fixture(scope="module")
def scene():
    from PIL import Image

    from avs_core.audio.frontend import read_audio, to_mono_float

    with Image.open(asset_path("grace_hopper")) as im:
        rgb = np.asarray(im.convert("RGB"))
    samples, sr = read_audio(asset_path("speech"))
    return rgb, to_mono_float(samples, sr), sr


@pytest.fixture(scope="module")
def llm_cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("framepath_models")
    return {
        "max_cues": 4,
        "captioner": {"path": str(save_tiny_blip(root / "blip")), "device": "cpu", "max_new_tokens": 24},
        "reasoner": {"path": str(save_tiny_llm(root / "llm")), "device": "cpu", "max_new_tokens": 48},
    }


def run_block(pipe, scene, refresher: CueRefresher | None, first_index: int):
    """Per-frame wall times of the node's frame path; offers to ``refresher`` when given."""
    rgb, audio, sr = scene
    times, results, sources = [], [], set()
    for i in range(first_index, first_index + BLOCK):
        stamp = 1.0 + i * 0.1
        window = audio[int((i % 8) * 0.5 * sr):][:sr]
        t0 = time.perf_counter()
        cues = None
        if refresher is not None:
            refresher.offer(rgb, window, sr, stamp)
            cues = refresher.latest(now=stamp)
            sources.add(cues.source)
        results.append(pipe(Window(rgb, window, sr, stamp - 1.0, stamp, list(cues.texts) if cues else None)))
        times.append(time.perf_counter() - t0)
    return times, results, sources


def wait_idle(refresher: CueRefresher) -> None:
    """No new input is offered, so once the current call ends the refresher stays idle."""
    end = time.monotonic() + 120
    while refresher.stats().busy and time.monotonic() < end:
        time.sleep(0.01)


def summary(times) -> str:
    ms = [t * 1e3 for t in times]
    return f"median {statistics.median(ms):6.1f} ms  mean {statistics.fmean(ms):6.1f} ms  max {max(ms):6.1f} ms"


def test_frame_path_with_and_without_refresher(zero_shot_pipeline, scene, llm_cfg):
    pipe = zero_shot_pipeline
    pipe.warmup()
    configs = [
        ("tagger, thread, 0.5 s", lambda: TaggerCueProvider(lambda s, r: pipe.audio_tags(s, r, k=10)), 0.5),
        ("tiny caption+LLM, thread, busy", lambda: build_cue_provider(llm_cfg), 1e-3),
        ("tiny caption+LLM, process, busy",
         lambda: build_cue_provider(dict(llm_cfg, process=True, process_threads=1)), 1e-3),
    ]
    for name, make, period in configs:
        provider = make()
        refresher = CueRefresher(provider, period_s=period)
        refresher.offer(scene[0], scene[1][: scene[2]], scene[2], 0.5)
        refresher.start()
        inactive, active, frames_done, all_sources = [], [], 0, set()
        try:
            for _ in range(ROUNDS):
                wait_idle(refresher)
                times, results, _ = run_block(pipe, scene, None, frames_done)
                inactive += times
                frames_done += len(results)
                runs = refresher.stats().runs
                times, results, sources = run_block(pipe, scene, refresher, frames_done)
                active += times
                frames_done += len(results)
                all_sources |= sources
                # Every frame produced a full-size result while the provider was working.
                assert len(results) == BLOCK and all(r.mask.shape == scene[0].shape[:2] for r in results)
            end = time.monotonic() + 120
            while refresher.stats().runs == runs and time.monotonic() < end:
                time.sleep(0.01)
        finally:
            refresher.stop()
            if hasattr(provider, "close"):
                provider.close()
        st = refresher.stats()
        print(f"\n[frame path] {name}: refresher inactive {summary(inactive)}"
              f"\n[frame path] {name}: refresher active   {summary(active)}"
              f"\n[frame path] {name}: provider runs {st.runs}, last call {st.last_duration_s * 1e3:.0f} ms, "
              f"cues {refresher.latest().texts} ({refresher.latest().source})")
        assert st.failures == 0 and st.runs >= 1
        assert all_sources and all_sources <= {"none", provider.source, "captioner+reasoner(fallback:nouns)"}
        assert refresher.latest().source != "none"
