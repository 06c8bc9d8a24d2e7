"""Run avs_node / mic_node in their own process (``avs demo`` and the DDS tests)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .dds import apply_profile

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def ros_env(domain_id: int | None = None, **extra: str) -> dict[str, str]:
    """Environment for a child ROS process: unbuffered, uncoloured logs; optional domain id; the avs Fast DDS
    profile (config/fastdds.xml) unless the caller's environment names one.

    The PyPI ROS wheels need nothing else: their .pth bootstrap sets LD_LIBRARY_PATH
    and re-executes the interpreter, and children inherit the result.
    """
    env = dict(os.environ)
    apply_profile(env)
    env.update(PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0", RCUTILS_COLORIZED_OUTPUT="0")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env.update(extra)
    return env


class NodeProcess:
    """``avs <kind> --config ... --ros-args ...`` in a child process, its output in ``log_path``."""

    def __init__(self, kind: str, log_path: Path, config: str | os.PathLike | None = None,
                 ros_args: list[str] | tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "avs_ros.cli", kind]
        if config is not None:
            cmd += ["--config", os.fspath(config)]
        if ros_args:
            cmd += ["--ros-args", *ros_args]
        self.cmd = cmd
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env or ros_env(),
                                     cwd=_PACKAGE_ROOT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> bool:
        """True once ``text`` appears in the log; False on timeout or if the process exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if self.proc.poll() is not None:
                return text in self.log()
            time.sleep(0.2)
        return False

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT (clean ROS shutdown), then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode
