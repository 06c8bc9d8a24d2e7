"""What ``launch/avs.launch.py`` hands to avs_node for its launch arguments (ROS-launch free, unit-tested).

Parameters come in order, later ones winning: the avs YAML (``--config``; config/avs.yaml
is the one source of defaults), then ``params_file`` (a standard ``/**: ros__parameters:``
file, e.g. ``ros2 param dump`` output), then the explicit launch arguments.
"""
from __future__ import annotations

from . import audio_transport as at

# Launch argument -> avs_node parameter, applied only when the argument is not empty.
PARAMETER_ARGS = {"qos": "qos", "image_transport": "image_transport", "audio_transport": "audio.transport",
                  "assets_dir": "pipeline.assets_dir", "device": "pipeline.device"}
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def _bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"launch argument {name} must be true or false, got {text!r}")
    return value in ("true", "1")


def audio_topics(audio: str, transport: str) -> tuple[str, str]:
    """(audio topic, audio_info topic): the driver's topic for the transport unless ``audio`` names one."""
    if not audio:
        if transport and transport not in at.TRANSPORTS:
            raise ValueError(f"audio_transport must be one of {', '.join(at.TRANSPORTS)}, got {transport!r}")
        audio = at.DRIVER_TOPICS[transport if transport not in ("", "auto") else at.resolve_transport("auto")]
    info = audio.rsplit("/", 1)[0] + "/audio_info" if audio.count("/") > 1 else "/audio/audio_info"
    return audio, info


def avs_node_settings(args: dict[str, str], config: str) -> dict:
    """Keyword arguments for launch_ros ``Node`` (arguments, parameters, ros_arguments, remappings)."""
    overrides = {param: args[arg] for arg, param in PARAMETER_ARGS.items() if args.get(arg)}
    overrides["use_sim_time"] = _bool("use_sim_time", args.get("use_sim_time") or "false")
    parameters = ([args["params_file"]] if args.get("params_file") else []) + [overrides]
    level = (args.get("log_level") or "info").lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    audio, audio_info = audio_topics(args.get("audio", ""), args.get("audio_transport", ""))
    remappings = [("image", args.get("image") or "/camera/image_raw"), ("audio", audio), ("audio_info", audio_info)]
    remappings.append(("camera_info", remappings[0][1].rsplit("/", 1)[0] + "/camera_info"))
    return {"arguments": ["--config", config], "parameters": parameters, "ros_arguments": ["--log-level", level],
            "remappings": remappings}
