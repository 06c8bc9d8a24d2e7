"""The node's rate-limited warnings: :class:`avs_core.throttle.ThrottledWarnings` (shared with avs_core)."""
from avs_core.throttle import ThrottledWarnings

__all__ = ["ThrottledWarnings"]
