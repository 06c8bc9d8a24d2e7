"""Rate-limited warnings: one line per kind per interval, counts kept, any severity from one instance."""
from __future__ import annotations

import logging

import pytest

from avs_core.throttle import ThrottledWarnings


def test_one_line_per_kind_per_interval_with_suppressed_count(caplog):
    now = [0.0]
    w = ThrottledWarnings(logging.getLogger("throttle-test"), interval_s=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "throttle-test"):
        assert w.warn("bad_image", "empty image")
        assert not w.warn("bad_image", "empty image")
        assert not w.warn("bad_image", "empty image")
        assert w.warn("bad_audio", "NaN samples")  # another kind is not held back
        now[0] = 5.0
        assert w.warn("bad_image", "empty image", level="error")
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [("WARNING", "[bad_image] empty image"), ("WARNING", "[bad_audio] NaN samples"),
                     ("ERROR", "[bad_image] empty image [2 more 'bad_image' since last report]")]
    assert w.snapshot() == {"bad_image": 4, "bad_audio": 1}
    with pytest.raises(ValueError):
        w.warn("x", "y", level="loud")


def test_rclpy_logger_accepts_every_level_from_one_instance():
    from conftest import require_package

    require_package("rclpy", "ROS 2 Python packages (requirements-ros.txt)")
    from rclpy.logging import get_logger

    # rclpy raises "Logger severity cannot be changed between calls" when one call site changes level.
    w = ThrottledWarnings(get_logger("avs_throttle_test"), interval_s=0.0)
    for level in ("warning", "error", "info", "warning", "error"):
        assert w.warn("kind", f"at {level}", level=level)
