"""Packaging: declared dependencies cover every import, package data travels in a wheel, optional imports stay optional."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from avs_core.config import CONFIG_DIR

REPO = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"avs_core", "avs_ros", "avs_config"}
# What a source tree needs to build: the same list test_colcon copies into a workspace.
SOURCES = ["avs_core", "avs_ros", "config", "launch", "resource", "setup.py", "setup.cfg", "package.xml"]


def copy_sources(dst: Path) -> Path:
    dst.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        src = REPO / name
        (shutil.copytree(src, dst / name, ignore=ignore) if src.is_dir() else shutil.copy(src, dst / name))
    return dst


def third_party_imports(*folders: str) -> dict[str, set[str]]:
    """Top-level module -> files importing it (import statements and importlib.import_module("literal"))."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
                      and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    names = [node.args[0].value]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def _norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def requirement_names() -> set[str]:
    names = set()
    for req in ("requirements.txt", "requirements-ros.txt"):
        for line in (REPO / req).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                names.add(_norm(re.split(r"[<>=!~\[; ]", line)[0]))
    return names


def package_xml() -> tuple[set[str], set[str]]:
    """(declared dependency keys, optional names listed in `optional: NAME` comments)."""
    text = (REPO / "package.xml").read_text()
    root = ET.fromstring(text)
    tags = ("depend", "exec_depend", "build_depend", "buildtool_depend", "test_depend")
    declared = {el.text.strip() for tag in tags for el in root.iter(tag)}
    optional = set(re.findall(r"optional: (\w+)", "".join(re.findall(r"<!--(.*?)-->", text, re.S))))
    return declared, optional


def test_every_third_party_import_is_declared():
    """Each import must come from requirements*.txt (pip) or package.xml (a ROS package, required or optional)."""
    reqs = requirement_names()
    declared, optional = package_xml()
    dists = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, files in third_party_imports("avs_core", "avs_ros", "launch").items():
        if module in declared or module in optional:  # ROS packages: the module is the package name
            continue
        pip = {_norm(d) for d in dists.get(module, [])}
        if pip & reqs:
            continue
        undeclared[module] = f"{sorted(files)[:3]} (distribution {sorted(pip) or 'not installed here'})"
    assert not undeclared, f"imports declared neither in requirements*.txt nor package.xml: {undeclared}"


def test_package_xml_has_the_rosdep_keys_and_optional_deps_are_not_hard_dependencies():
    declared, optional = package_xml()
    assert {"python3-torch", "python3-torchvision", "python3-scipy", "python3-soundfile", "python3-opencv",
            "python3-numpy", "python3-yaml", "python3-tqdm", "rclpy", "sensor_msgs"} <= declared
    assert {"audio_common_msgs", "cv_bridge", "vision_msgs"} <= optional
    assert not optional & declared, "an optional dependency is declared as a hard one"
    for module in optional - {"launch_testing", "launch_testing_ros"}:  # those are only in test files
        assert module in third_party_imports("avs_ros"), f"{module} listed optional but never imported"


def test_conversions_import_needs_no_decoder_and_names_both_when_missing():
    code = textwrap.dedent("""
        import sys
        sys.modules["cv_bridge"] = None  # both decoders absent: importing them raises ImportError
        sys.modules["rosbags"] = None
        from types import SimpleNamespace
        import avs_ros.conversions as c
        msg = SimpleNamespace(encoding="rgb8", width=2, height=1, step=6, is_bigendian=0, data=bytes(6))
        try:
            c.image_msg_to_rgb(msg)
        except ImportError as exc:
            print(type(exc).__name__, exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("MissingPackageError")
    assert "cv_bridge" in out.stdout and "rosbags-image" in out.stdout and "decoding sensor_msgs images" in out.stdout


def test_conversions_prefer_cv_bridge_when_it_imports():
    """A stand-in cv_bridge module (the real one needs an apt ROS install) is chosen over rosbags.image."""
    code = textwrap.dedent("""
        import sys, types
        import numpy as np
        calls = []
        class CvBridge:
            def encoding_to_dtype_with_channels(self, encoding):
                return {"rgb8": ("uint8", 3), "bgr8": ("uint8", 3), "8UC3": ("uint8", 3)}[encoding]
            def imgmsg_to_cv2(self, msg, desired_encoding):
                calls.append((msg.encoding, desired_encoding))
                return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
        sys.modules["cv_bridge"] = types.SimpleNamespace(CvBridge=CvBridge)
        sys.modules["rosbags"] = None
        import avs_ros.conversions as c
        msg = types.SimpleNamespace(encoding="8UC3", width=2, height=1, step=6, is_bigendian=0, data=bytes(range(6)))
        out = c.image_msg_to_rgb(msg)
        print(c.backend(), calls, out.tolist())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cv_bridge [('bgr8', 'rgb8')] [[[0, 1, 2], [3, 4, 5]]]"


def test_checkout_reads_config_through_the_avs_config_package():
    from importlib import resources

    assert Path(str(resources.files("avs_config"))) == REPO / "config" == CONFIG_DIR


def test_wheel_carries_config_and_manifest_and_finds_them_without_the_checkout(tmp_path):
    src = copy_sources(tmp_path / "src")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("avs_ros-*.whl"))
    target = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-3000:]
    code = ("import avs_core, avs_core.assets as a, avs_core.config as c; "
            "print(avs_core.__file__); print(c.CONFIG_DIR); print(a.checkout_mirror()); print(len(a.MANIFEST)); "
            "print(' '.join(sorted(p.name for p in c.CONFIG_DIR.iterdir() if p.name != '__pycache__')))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    module, config_dir, mirror, count, names = out.stdout.splitlines()
    assert Path(module).is_relative_to(target) and Path(config_dir) == target / "avs_config"
    assert mirror == "None"  # an installed package has no ../shared fallback
    from avs_core import assets

    assert int(count) == len(assets.MANIFEST)
    expected = sorted(p.name for p in (REPO / "config").iterdir() if p.suffix in (".yaml", ".xml") or p.name in ("models", "__init__.py"))
    assert names.split() == expected


def _plan(script: Path, tmp_path: Path, **env: str) -> dict[str, str]:
    out = subprocess.run(["bash", str(script), "--plan"], capture_output=True, text=True, timeout=60,
                         env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **env})
    assert out.returncode == 0, out.stderr
    return dict(re.findall(r"(\w+)=(\S*(?: requirements-ros\.txt)?)", out.stdout))


def test_setup_picks_robot_mode_only_when_ros_is_sourced(tmp_path):
    """Robot mode needs ROS_DISTRO *and* a python3 that imports rclpy (here: a python3 wrapper around this venv)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (fake / "python3").chmod(0o755)
    script = REPO / "scripts" / "setup.sh"
    robot = _plan(script, tmp_path, ROS_DISTRO="jazzy", PATH=f"{fake}:/usr/bin:/bin")
    assert robot["mode"] == "robot" and robot["venv_flags"] == "--system-site-packages"
    assert robot["requirements"] == "requirements.txt" and robot["python"] == "python3"
    dev = _plan(script, tmp_path, PATH=f"{fake}:/usr/bin:/bin")  # rclpy importable but no ROS sourced
    assert dev["mode"] == "dev" and dev["requirements"] == "requirements.txt requirements-ros.txt"
    no_rclpy = tmp_path / "bin2"
    no_rclpy.mkdir()
    (no_rclpy / "python3").write_text("#!/bin/sh\nexit 1\n")  # a system Python without rclpy
    (no_rclpy / "python3").chmod(0o755)
    stale = _plan(script, tmp_path, ROS_DISTRO="jazzy", PATH=f"{no_rclpy}:/usr/bin:/bin")  # ROS_DISTRO left over, not sourced
    assert stale["mode"] == "dev"


def test_setup_fetches_from_the_shared_mirror_only_where_it_exists(tmp_path):
    here = _plan(REPO / "scripts" / "setup.sh", tmp_path)
    assert here["assets_from"] == ("../shared/assets" if (REPO.parent / "shared" / "assets").is_dir() else "origin")
    lone = tmp_path / "checkout" / "scripts"
    lone.mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", lone / "setup.sh")
    assert _plan(lone / "setup.sh", tmp_path)["assets_from"] == "origin"
    assert _plan(lone / "setup.sh", tmp_path, AVS_ASSETS_FROM="http://mirror/")["assets_from"] == "http://mirror/"
