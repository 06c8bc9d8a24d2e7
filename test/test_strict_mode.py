"""The skip policy of test/conftest.py, run on probe tests in a child pytest (strict and not)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

PROBES = textwrap.dedent('''
    import pytest
    from conftest import asset_path, optional_package, require_package

    def test_required_package_missing():
        require_package("avs_no_such_module")

    def test_optional_package_missing():
        optional_package("avs_no_such_module", "apt-only here")

    def test_plain_skip():
        pytest.skip("some reason")

    @pytest.mark.optional("documented reason")
    @pytest.mark.skipif(True, reason="condition")
    def test_marked_optional():
        pass

    @pytest.mark.cuda
    def test_needs_cuda():
        import torch
        assert torch.cuda.is_available()

    def test_missing_asset():
        asset_path("no_such_asset")

    def test_passes():
        pass
''')


def _run(tmp_path: Path, strict: bool, files: dict[str, str]) -> tuple[int, str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    env = {k: v for k, v in os.environ.items() if k != "AVS_TEST_STRICT"}
    if strict:
        env["AVS_TEST_STRICT"] = "1"
    out = subprocess.run([sys.executable, "-m", "pytest", "-v", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    return out.returncode, out.stdout


def _outcomes(stdout: str) -> dict[str, str]:
    """test name -> its final outcome in pytest -v lines (a setup-phase failure reads ERROR)."""
    return dict(re.findall(r"::(\w+) (PASSED|FAILED|SKIPPED|ERROR)", stdout))


def test_strict_mode_fails_missing_installs_and_keeps_legitimate_skips(tmp_path):
    rc, out = _run(tmp_path, True, {"test_probe.py": PROBES})
    got = _outcomes(out)
    import torch

    cuda = "PASSED" if torch.cuda.is_available() else "SKIPPED"
    assert got == {"test_required_package_missing": "FAILED", "test_optional_package_missing": "SKIPPED",
                   "test_plain_skip": "FAILED", "test_marked_optional": "SKIPPED", "test_needs_cuda": cuda,
                   "test_missing_asset": "FAILED", "test_passes": "PASSED"}, out
    assert rc == 1 and "AVS_TEST_STRICT=1: this skip is a failure in CI" in out


def test_without_strict_mode_they_are_plain_skips(tmp_path):
    rc, out = _run(tmp_path, False, {"test_probe.py": PROBES})
    got = _outcomes(out)
    assert rc == 0 and list(got.values()).count("FAILED") == 0 and got["test_passes"] == "PASSED", out


def test_module_level_skip_fails_the_session_in_strict_mode(tmp_path):
    files = {"test_mod.py": "import pytest\npytest.importorskip('avs_no_such_module')\n\ndef test_a():\n    pass\n",
             "test_ok.py": "def test_b():\n    pass\n",
             "test_opt.py": ("from conftest import optional_package\noptional_package('avs_no_such_module', 'apt only')\n\n"
                             "def test_c():\n    pass\n")}
    rc, out = _run(tmp_path, True, files)
    assert rc == 1 and "module skipped, counted as a FAILURE: test_mod.py" in out
    assert "counted as a FAILURE: test_opt.py" not in out  # optional_package at module level stays a skip
    rc, out = _run(tmp_path, False, files)
    assert rc == 0, out
