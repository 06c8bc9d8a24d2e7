"""The shipped Fast DDS profile (config/fastdds.xml): apply it, and read the shared-memory segment size in use.

Fast DDS reads its profile file from the environment when the first participant is
created, so ``apply_profile`` must run before ``rclpy.init`` (or on the environment
handed to a child process). A profile the user chose always wins.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import MutableMapping

from avs_core.config import CONFIG_DIR

PROFILE = CONFIG_DIR / "fastdds.xml"
# Fast DDS 3 (Jazzy, Kilted) reads the first, Fast DDS 2 (Humble) the second.
ENV_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
DEFAULT_SEGMENT_BYTES = 512 * 1024  # Fast DDS's built-in shared-memory segment


def apply_profile(env: MutableMapping[str, str] | None = None) -> str | None:
    """Point ``env`` (default os.environ) at config/fastdds.xml unless a profile is already set; returns the file in use."""
    env = os.environ if env is None else env
    for var in ENV_VARS:
        if env.get(var):
            return env[var]
    if not PROFILE.is_file():
        return None
    # Fast DDS 3's rmw warns that the Fast DDS 2 name is deprecated: set it only where it is read.
    for var in ENV_VARS if env.get("ROS_DISTRO") == "humble" else ENV_VARS[:1]:
        env[var] = str(PROFILE)
    return str(PROFILE)


def profile_in_use(env: MutableMapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return next((env[var] for var in ENV_VARS if env.get(var)), None)


def shm_segment_bytes(profile: str | os.PathLike | None) -> int:
    """Shared-memory segment of the default participant profile in ``profile`` (Fast DDS's default without one).

    Approximate by design: reads the first SHM transport descriptor with a segment_size;
    a file that does not parse counts as the default.
    """
    if profile is None:
        return DEFAULT_SEGMENT_BYTES
    try:
        root = ET.parse(Path(profile)).getroot()
    except (OSError, ET.ParseError):
        return DEFAULT_SEGMENT_BYTES
    for desc in root.iter():
        if _local(desc.tag) != "transport_descriptor":
            continue
        fields = {_local(child.tag): (child.text or "").strip() for child in desc}
        if fields.get("type") == "SHM" and fields.get("segment_size", "").isdigit():
            return int(fields["segment_size"])
    return DEFAULT_SEGMENT_BYTES


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
