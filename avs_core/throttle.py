"""Rate-limited warnings keyed by kind, with counts (the node reports them on /diagnostics).

Bad input usually repeats at sensor rate; one line per kind per interval (with the
number of suppressed repeats) keeps logs readable while the counters keep the total.
Works with a ``logging.Logger`` and with an rclpy node logger alike.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

LEVELS = ("info", "warning", "error")


class ThrottledWarnings:
    def __init__(self, logger, interval_s: float = 5.0, clock=time.monotonic):
        self._logger = logger
        self.interval_s = float(interval_s)
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def warn(self, kind: str, message: str, level: str = "warning") -> bool:
        """Count one ``kind`` event and log it unless one was logged within the interval; True if logged."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        now = self._clock()
        with self._lock:
            self.counts[kind] += 1
            last = self._last.get(kind)
            if last is not None and now - last < self.interval_s:
                self._suppressed[kind] += 1
                return False
            self._last[kind] = now
            suppressed, self._suppressed[kind] = self._suppressed[kind], 0
        if suppressed:
            message += f" [{suppressed} more '{kind}' since last report]"
        text = f"[{kind}] {message}"
        # One call site per severity: rclpy raises when a single call site changes severity.
        if level == "error":
            self._logger.error(text)
        elif level == "info":
            self._logger.info(text)
        else:
            self._logger.warning(text)
        return True

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)
