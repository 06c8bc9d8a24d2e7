"""Node parameters: one table of specs, the YAML file, ROS declarations and validation.

``config/avs.yaml`` has four sections: ``pipeline`` (passed to
``AVSPipeline.from_config``; exposed as ``pipeline.<key>`` ROS parameters),
``node`` (avs_node), ``mic`` (mic_node) and ``cues`` (passed to
``avs_core.cues.providers.build_cue_provider``; exposed as ``cues.<key>`` parameters). The same file feeds ``ros2 launch``
(flattened into a parameter dict) and ``avs node --config``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from avs_core.config import CONFIG_DIR, load_yaml
from avs_core.errors import ConfigError
from avs_core.pcm import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

from .audio_transport import TRANSPORTS

DEFAULT_CONFIG = CONFIG_DIR / "avs.yaml"
SECTIONS = ("pipeline", "node", "mic", "cues")


@dataclass(frozen=True)
class Spec:
    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    runtime: bool = False  # may change while the node runs

    def check(self, value: Any) -> str | None:
        """Reason why ``value`` is invalid, or None."""
        if isinstance(self.default, bool) != isinstance(value, bool):
            return f"{self.name} must be a bool, got {value!r}"
        if isinstance(self.default, (int, float)) and not isinstance(self.default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return f"{self.name} must be a number, got {value!r}"
            if self.range and not self.range[0] <= value <= self.range[1]:
                return f"{self.name}={value} is outside [{self.range[0]}, {self.range[1]}]"
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r} is not one of {', '.join(self.choices)}"
        return None


NODE_SPECS = (
    Spec("image_transport", "raw", "input image message: raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage)",
         choices=("raw", "compressed")),
    Spec("qos", "auto", "input QoS: auto (reliable when every publisher offers reliable, else best effort; "
         "follows publishers as they change), sensor_data (best effort) or reliable",
         choices=("auto", "sensor_data", "reliable")),
    Spec("audio.transport", "auto", "audio messages: audio_common_stamped (ros-drivers AudioDataStamped + AudioInfo), "
         "audio_common (ros-drivers AudioData + AudioInfo), audio_stamped (mgonzs13 AudioStamped), int16 / float32 "
         "(std_msgs MultiArray); auto = the installed audio_common_msgs variant, else float32", choices=TRANSPORTS),
    Spec("audio.sample_rate", 16000, "sample rate (Hz) of int16/float32 audio (those messages carry none)", range=(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)),
    Spec("audio.buffer_s", 5.0, "seconds of audio kept in the ring buffer", range=(1.0, 60.0)),
    Spec("audio.wait_s", 0.1, "longest a frame waits (from its arrival) for its window's audio before going with what arrived",
         range=(0.0, 1.0), runtime=True),
    Spec("audio.min_coverage", 0.9, "fraction of the window's audio at which a frame is processed without waiting further",
         range=(0.0, 1.0), runtime=True),
    Spec("max_rate_hz", 0.0, "upper bound on processed frames per second (0: as fast as inference allows)",
         range=(0.0, 120.0), runtime=True),
    Spec("max_frame_age_s", 2.0, "frames older than this (now - stamp) when the worker gets to them are dropped as stale",
         range=(0.05, 60.0), runtime=True),
    Spec("stall_timeout_s", 3.0, "warn when a topic with publishers delivers nothing for this long", range=(0.5, 60.0), runtime=True),
    Spec("warn_interval_s", 5.0, "minimum seconds between repeats of the same warning", range=(0.5, 600.0), runtime=True),
    Spec("cue_refresh_s", 2.0, "seconds between scene-cue refreshes in the background (0: off)", range=(0.0, 3600.0)),
    Spec("overlay_alpha", 0.45, "heatmap opacity in the overlay image", range=(0.0, 1.0), runtime=True),
    Spec("diagnostics_period_s", 1.0, "seconds between /diagnostics messages", range=(0.1, 60.0)),
    Spec("doa.frame_id", "mic_array", "TF frame of the microphone array (pipeline.doa.mic_array): frame of the doa "
         "output; with tf2_ros the array -> camera transform is looked up from it, else pipeline.doa.array_to_camera"),
    Spec("doa.marker", True, "also publish doa/marker (visualization_msgs/Marker arrow for RViz)"),
    Spec("autostart", True, "configure and activate the lifecycle node at start-up"),
)

# Pipeline keys that may change at run time (AVSPipeline.update validates them again).
PIPELINE_RUNTIME = {
    "window_s": (0.1, 10.0, "seconds of audio ending at the frame stamp"),
    "tagger_context_s": (0.0, 10.0, "zero-shot: seconds of audio ending at the frame stamp that the tagger hears "
                         "(at most audio.buffer_s)"),
    "silence_dbfs": (-200.0, 0.0, "RMS level (dBFS) below which the window is silent and the mask empty"),
    "audio_threshold": (0.0, 1.0, "tagger probability at which a sound counts as sounding"),
    "mask_threshold": (0.0, 1.0, "heatmap value at which a pixel joins the mask"),
}

MIC_SPECS = (
    Spec("device", "", "PortAudio input device name or index ('' = system default)"),
    Spec("sample_rate", 16000, "capture sample rate (Hz)", range=(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)),
    Spec("channels", 1, "capture channels", range=(1, 32)),
    Spec("chunk_s", 0.1, "seconds of audio per published message", range=(0.005, 1.0)),
    Spec("transport", "auto", "audio messages to publish (see avs_node audio.transport)", choices=TRANSPORTS),
    Spec("frame_id", "microphone", "header frame_id of published audio"),
    Spec("reconnect_s", 2.0, "seconds between attempts to reopen a lost device", range=(0.1, 60.0)),
)


def load_config(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The sections of an avs YAML file (missing sections are empty)."""
    cfg = load_yaml(path or DEFAULT_CONFIG)
    unknown = set(cfg) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{path or DEFAULT_CONFIG}: unknown top-level sections {sorted(unknown)}; expected {SECTIONS}")
    out = {}
    for section in SECTIONS:
        value = cfg.get(section) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"section {section!r} must be a mapping")
        out[section] = value
    return out


def pipeline_specs(pipeline_cfg: Mapping[str, Any]) -> list[Spec]:
    """Specs for ``pipeline.*``: every key of the merged pipeline config (config/pipeline.yaml + the YAML section)."""
    from avs_core.pipeline import pipeline_config

    return config_specs("pipeline", pipeline_config(pipeline_cfg), "config/pipeline.yaml", PIPELINE_RUNTIME)


def config_specs(prefix: str, cfg: Mapping[str, Any], where: str, runtime: Mapping[str, tuple] = {}) -> list[Spec]:
    """``<prefix>.<key>`` specs for every leaf of a config section (fixed while running unless in ``runtime``)."""
    specs = []
    for key, value in _flatten(cfg).items():
        if isinstance(value, list) and (not value or any(v is None for v in value)):
            continue  # no ROS parameter type (empty, or holding null): the YAML value is used as is
        if value is None:
            # ROS parameters cannot be null: unset paths (checkpoint, assets_dir, ...) are '' strings.
            specs.append(Spec(f"{prefix}.{key}", "", f"{prefix} setting {key} (see {where}; '' = unset); fixed while running"))
        elif key in runtime:
            lo, hi, desc = runtime[key]
            specs.append(Spec(f"{prefix}.{key}", float(value), desc, range=(lo, hi), runtime=True))
        else:
            specs.append(Spec(f"{prefix}.{key}", value, f"{prefix} setting {key} (see {where}); fixed while running"))
    return specs


def section_specs(section: str, values: Mapping[str, Any], specs: tuple[Spec, ...]) -> list[Spec]:
    """``specs`` with defaults taken from a YAML section; unknown or invalid keys are a ConfigError."""
    known = {s.name: s for s in specs}
    flat = _flatten(values)
    unknown = set(flat) - set(known)
    if unknown:
        raise ConfigError(f"unknown keys in section {section!r}: {sorted(unknown)}; known: {sorted(known)}")
    out = []
    for spec in specs:
        value = flat.get(spec.name, spec.default)
        if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        reason = spec.check(value)
        if reason:
            raise ConfigError(f"{section}: {reason}")
        out.append(Spec(spec.name, value, spec.description, spec.range, spec.choices, spec.runtime))
    return out


def node_specs(cfg: Mapping[str, Mapping[str, Any]]) -> list[Spec]:
    return (section_specs("node", cfg.get("node", {}), NODE_SPECS) + pipeline_specs(cfg.get("pipeline", {}))
            + config_specs("cues", cfg.get("cues", {}), "the cues section, avs_core/cues/providers.py"))


def mic_specs(cfg: Mapping[str, Mapping[str, Any]]) -> list[Spec]:
    return section_specs("mic", cfg.get("mic", {}), MIC_SPECS)


def as_parameter_dict(specs: list[Spec]) -> dict[str, Any]:
    """Flat {name: value} for launch files (``Node(parameters=[...])``)."""
    return {s.name: s.default for s in specs}


def pipeline_from_parameters(values: Mapping[str, Any], pipeline_cfg: Mapping[str, Any], prefix: str = "pipeline") -> dict[str, Any]:
    """Nested config: the YAML section overlaid with ``<prefix>.*`` parameter values ('' -> null); also for ``cues``."""
    out: dict[str, Any] = {k: v for k, v in pipeline_cfg.items()}
    for name, value in values.items():
        if not name.startswith(prefix + "."):
            continue
        node = out
        parts = name.split(".")[1:]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = None if value == "" else value
    return out


def declare(node, specs: list[Spec]) -> dict[str, Any]:
    """Declare every spec on an rclpy node (overrides from --ros-args/launch win); returns the values."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    values = {}
    for spec in specs:
        desc = ParameterDescriptor(name=spec.name, description=spec.description, read_only=not spec.runtime)
        if spec.range and isinstance(spec.default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]), to_value=float(spec.range[1]), step=0.0)]
        elif spec.range and isinstance(spec.default, int):
            desc.integer_range = [IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
        if spec.choices:
            desc.additional_constraints = "one of: " + ", ".join(spec.choices)
        param = node.declare_parameter(spec.name, spec.default, desc)
        values[spec.name] = param.value
        # Overrides bypass the callback-time checks for choices; validate them here.
        reason = spec.check(param.value)
        if reason:
            raise ConfigError(f"parameter {reason}")
    return values


def _flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out
