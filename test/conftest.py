"""Shared fixtures and the skip policy of the test suite.

Skip helpers (use these instead of bare ``pytest.skip`` / ``pytest.importorskip``):

- ``asset_path(name)``: path of a verified asset (``avs_core.assets.resolve``); skips when it is
  missing or fails its checksum. Also the ``asset`` fixture; ``no_assets`` empties the asset
  search path for tests of the missing-asset error.
- ``require_package(module, why="")``: import and return a module the project's own install
  (``scripts/setup.sh``) provides; skips when it does not import.
- ``optional_package(module, why)``: import and return a module that legitimately cannot exist on
  some machines (launch_testing, ros2 launch, cv_bridge, tf2_ros: apt-only ROS packages); skips when
  it does not import. ``optional_skip(why)`` is the same for any other legitimate reason (no CUDA
  device, a ROS distro feature the PyPI wheels lack), and ``@pytest.mark.optional(why)`` marks a
  whole test whose skips are legitimate. ``@pytest.mark.cuda`` marks a test that needs a CUDA
  device: it is skipped (legitimately) where torch sees none.

Strict mode (``AVS_TEST_STRICT=1``, exported by ``.ci/run``): every skip that is not one of the
legitimate kinds above is reported as a FAILURE, so a missing install step or asset cannot turn CI
green. Outside strict mode all of them are plain skips.
"""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

from avs_core import assets
from avs_core.errors import AssetError

STRICT = os.environ.get("AVS_TEST_STRICT", "").strip().lower() in ("1", "true", "yes")


class OptionalSkip(pytest.skip.Exception):
    """A skip that stays a skip in strict mode: the missing thing cannot exist on this machine."""


def optional_skip(why: str):
    raise OptionalSkip(f"optional: {why}", allow_module_level=True)


def asset_path(name: str):
    try:
        return assets.resolve(name)
    except AssetError as exc:
        pytest.skip(f"asset unavailable: {exc}")


def require_package(module: str, why: str = ""):
    """Import ``module`` (dotted name); skip (FAIL in strict mode) when the install lacks it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.skip(f"required package {module!r} not importable{f' ({why})' if why else ''}: {exc}; "
                    "run `make setup` (scripts/setup.sh installs it)", allow_module_level=True)


def optional_package(module: str, why: str):
    """Import ``module``; skip (also in strict mode) when it is absent: ``why`` says why that is legitimate."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        optional_skip(f"{module} not importable ({why}): {exc}")


def pytest_configure(config):
    config.addinivalue_line("markers", "optional(why): skips of this test are legitimate even with AVS_TEST_STRICT=1")
    config.addinivalue_line("markers", "cuda: needs a CUDA device; skipped (a legitimate skip, also in strict mode) without one")


def pytest_runtest_setup(item):
    if item.get_closest_marker("cuda") is not None:
        import torch

        if not torch.cuda.is_available():
            optional_skip("needs a CUDA device (torch.cuda.is_available() is False)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not STRICT or not report.skipped or hasattr(report, "wasxfail"):
        return
    if call.excinfo is not None and call.excinfo.errisinstance(OptionalSkip):
        return
    if item.get_closest_marker("optional") is not None:
        return
    report.outcome = "failed"
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.longrepr = f"AVS_TEST_STRICT=1: this skip is a failure in CI: {reason}"


_strict_module_skips: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Module-level skips (``require_package`` / importorskip at import time) fail the session in strict mode.

    They stay "skipped" in the report (a collection error would abort the whole run) and
    ``pytest_sessionfinish`` turns the exit status into a failure.
    """
    outcome = yield
    report = outcome.get_result()
    if not STRICT or not report.skipped:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if "optional: " not in reason:  # optional_skip / optional_package put it there
        _strict_module_skips.append(f"{collector.nodeid}: {reason}")


def pytest_terminal_summary(terminalreporter):
    for line in _strict_module_skips:
        terminalreporter.write_line(f"AVS_TEST_STRICT=1: module skipped, counted as a FAILURE: {line}", red=True)


def pytest_sessionfinish(session, exitstatus):
    if _strict_module_skips and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def asset():
    return asset_path


@pytest.fixture
def no_assets(tmp_path, monkeypatch):
    """An empty asset search path: empty user cache, no ../shared fallback, no auto-fetch.

    Assets are searched config assets_dir -> user cache -> ../shared/assets, so passing an
    empty ``assets_dir`` alone no longer makes an asset missing; tests of the missing-asset
    error use this fixture (it returns the empty folder, usable as ``assets_dir`` too).
    """
    empty = tmp_path / "no_assets"
    empty.mkdir()
    monkeypatch.setenv(assets.ENV_VAR, str(empty))
    monkeypatch.delenv(assets.AUTO_FETCH_ENV, raising=False)
    monkeypatch.setattr(assets, "checkout_mirror", lambda: None)
    return empty


@pytest.fixture(scope="session")
def speech_1s():
    from avs_core.audio.frontend import read_audio, to_mono_float

    samples, sr = read_audio(asset_path("speech"))
    mono = to_mono_float(samples, sr)
    return mono[2 * sr:3 * sr], sr


@pytest.fixture(scope="session")
def zero_shot_pipeline():
    from avs_core.pipeline import AVSPipeline

    asset_path("efficientat_mn04")
    return AVSPipeline.from_config({"device": "cpu"})


def white_noise(seconds: float, sr: int, rms: float = 0.1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, rms, int(seconds * sr)).astype(np.float32)
