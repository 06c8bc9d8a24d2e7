"""avs_node: camera + microphone in, stamped sounding-object mask / heatmap / overlay / cues out.

A lifecycle node: configure loads the pipeline and creates publishers (rolled back
if it fails half-way), activate warms the model up, subscribes and starts the
worker, deactivate stops them and waits for the worker, cleanup frees the model,
the cue provider's child process and GPU memory. With ``autostart`` (default) it
configures and activates itself, so it also runs where nobody drives lifecycle
transitions.

The streaming logic (audio ring, latest-frame slot, audio wait, worker, stats)
is ``avs_core.stream_processor.StreamProcessor``; this node only converts
messages, feeds the processor from its subscription callbacks and publishes
what the processor's worker hands to ``_on_output``. So the executor never
blocks on the model and a slow model drops frames instead of queueing them.

Input QoS (``qos``): ``auto`` (default) subscribes reliable when every publisher
on the topic offers reliable, else best-effort, and re-evaluates as publishers
come and go; ``sensor_data`` and ``reliable`` fix the profile.
"""
from __future__ import annotations

import gc
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import rclpy
import rclpy.subscription
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float32MultiArray, String

from avs_core.errors import AVSError, ConfigError, InputError
from avs_core.stream_processor import StreamOutput, StreamProcessor, StreamSettings
from avs_core.streaming import ChunkPacing

from . import audio_transport as at
from .conversions import check_image_msg, compressed_msg_to_rgb, image_msg_to_rgb, numpy_to_image_msg, stamp_seconds
from .params import declare, node_specs, pipeline_from_parameters
from .throttle import ThrottledWarnings

# Jazzy+ rclpy passes MessageInfo (DDS source/receive timestamps) to two-argument callbacks.
_HAS_MESSAGE_INFO = hasattr(rclpy.subscription.Subscription, "CallbackType")

try:  # rclpy >= Iron
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

# Published topics (name, type), created at configure; add a row for a new output.
OUTPUTS = (("mask", Image), ("heatmap", Image), ("overlay", Image), ("cues", String))
QOS_LABEL = {"reliable": "reliable", "sensor_data": "best-effort (sensor_data)"}
QOS_CHECK_PERIOD_S = 0.5  # how soon qos: auto follows a publisher that appeared or changed
WORKER_JOIN_S = 10.0  # how long deactivate waits for the worker to finish its frame


def input_qos(name: str, depth: int) -> QoSProfile:
    if name == "reliable":
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    return QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in ("reliability", "durability", "history")}, depth=depth)


def auto_qos(publishers) -> str:
    """'reliable' when every publisher offers reliable, else 'sensor_data' (best effort matches any publisher)."""
    if publishers and all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers):
        return "reliable"
    return "sensor_data"


def _offered(publishers) -> str:
    names = sorted({getattr(p.qos_profile.reliability, "name", str(p.qos_profile.reliability)) for p in publishers})
    return "/".join(names) or "none"


@dataclass(frozen=True)
class _Input:
    role: str  # topic name before remapping: image, audio, audio_info
    msg_type: type
    callback: Callable
    depth: int
    fixed_qos: str | None = None  # profile used unless qos is auto


@dataclass
class _Subscribed:
    input: _Input
    sub: Any
    qos: str  # key of QOS_LABEL


def _decode(msg) -> np.ndarray:
    return compressed_msg_to_rgb(msg) if isinstance(msg, CompressedImage) else image_msg_to_rgb(msg)


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


class AvsNode(LifecycleNode):
    def __init__(self, cfg: dict[str, dict[str, Any]], node_name: str = "avs_node", **kwargs):
        super().__init__(node_name, **kwargs)
        self._cfg = cfg
        self._specs = {s.name: s for s in node_specs(cfg)}
        self.values = declare(self, list(self._specs.values()))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.warnings = ThrottledWarnings(self.get_logger(), self.values["warn_interval_s"])
        self.pipeline = None
        self.stream: StreamProcessor | None = None
        self._refresher = None
        self._active = False
        self._subs: dict[str, _Subscribed] = {}
        self._timers: list = []
        self._pubs: dict[str, Any] = {}
        self._last_rx: dict[str, float | None] = {}
        self._image_seq: dict[str, int] = {}
        self._image_size: tuple[int, int] | None = None
        self.lost = 0

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # noqa: BLE001 - AVSError names the missing asset/key; anything else is reported too
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._release()  # roll back: a retry starts from nothing (no duplicate publishers)
            return TransitionCallbackReturn.FAILURE
        cues = self._refresher.provider.source if self._refresher is not None else "off"
        self.get_logger().info(f"configured: model {self.values.get('pipeline.model')} on {self.pipeline.device}, "
                               f"image {self.values['image_transport']}, audio {self.audio_transport}, qos {self.values['qos']}, "
                               f"cues {cues}")
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        from avs_core.pipeline import AVSPipeline

        # Publishers first, so a failure anywhere later exercises the rollback in on_configure.
        for name, kind in OUTPUTS:
            self._pubs[name] = self.create_lifecycle_publisher(kind, name, 10)
        self._pubs["diagnostics"] = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)
        self.audio_transport = at.resolve_transport(self.values["audio.transport"])
        self.pipeline = AVSPipeline.from_config(pipeline_from_parameters(self.values, self._cfg.get("pipeline", {})))
        if self.values["cue_refresh_s"] > 0:
            from avs_core.cues.providers import build_cue_provider
            from avs_core.cues.refresher import CueRefresher

            cues_cfg = self._cfg.get("cues") or {}
            top_k = int((cues_cfg.get("tagger") or {}).get("top_k", 10))
            # The tagger backend shares the pipeline's tagger: no second model in memory.
            provider = build_cue_provider(cues_cfg, tag_fn=lambda samples, sr: self.pipeline.audio_tags(samples, sr, k=top_k))
            self._refresher = CueRefresher(provider, self.values["cue_refresh_s"])
        self.stream = StreamProcessor(self.pipeline, decode=_decode, on_output=self._on_output,
                                      settings=StreamSettings(), clock=self._now, warn=self.warnings.warn,
                                      refresher=self._refresher, buffer_s=self.values["audio.buffer_s"])
        self._apply_settings()
        self.pacing = ChunkPacing()
        self._audio_info = None
        self.lost, self._image_seq, self._image_size = 0, {}, None

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        t0 = time.perf_counter()
        try:
            self.pipeline.warmup()
        except Exception as exc:  # noqa: BLE001 - a model that cannot run one frame must not go active
            self.get_logger().error(f"warm-up failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"warm-up done in {time.perf_counter() - t0:.1f} s")
        try:
            self.stream.start()
        except RuntimeError as exc:  # the previous worker never finished its frame: never run two on one model
            self.get_logger().error(f"activate refused: {exc}")
            return TransitionCallbackReturn.FAILURE
        result = super().on_activate(state)  # activates the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            self.stream.stop()
            return result
        self._active = True
        self._create_subscriptions()
        self._timers = [self.create_timer(self.values["diagnostics_period_s"], self._publish_diagnostics),
                        self.create_timer(QOS_CHECK_PERIOD_S, self._check_qos),
                        self.create_timer(1.0, self._watch_inputs)]
        self.get_logger().info(f"active: subscribed to {', '.join(s.sub.topic_name for s in self._subs.values())}")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_processing(self) -> None:
        """Unsubscribe, stop the timers and wait for the worker to finish its frame."""
        self._active = False
        for entry in self._subs.values():
            self.destroy_subscription(entry.sub)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subs, self._timers = {}, []
        if self.stream is not None and not self.stream.stop(timeout_s=WORKER_JOIN_S):
            self.get_logger().error(f"the worker is still busy on a frame after {WORKER_JOIN_S:.0f} s; "
                                    "activation is refused until it finishes")

    def _release(self) -> None:
        """Free what configure created: publishers, the cue provider (and its child process), the model."""
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs.clear()
        if self.stream is not None and self.stream.alive:
            self.stream.stop(timeout_s=WORKER_JOIN_S)
        if self._refresher is not None:
            self._refresher.stop()
            close = getattr(self._refresher.provider, "close", None)
            if close is not None:
                close()
        device = str(self.pipeline.device) if self.pipeline is not None else "cpu"
        self.pipeline = self._refresher = self.stream = None
        gc.collect()
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ inputs
    def _inputs(self) -> list[_Input]:
        """The input topics to subscribe to; add a row here for a new input."""
        image_type = CompressedImage if self.values["image_transport"] == "compressed" else Image
        image_cb = self._on_image_with_info if _HAS_MESSAGE_INFO else self._on_image
        if self.audio_transport == "audio_common":
            return [_Input("image", image_type, image_cb, 5),
                    _Input("audio", at.AudioDataStamped, self._on_audio, 100),
                    _Input("audio_info", at.AudioInfo, self._on_audio_info, 1, fixed_qos="reliable")]
        # Unstamped audio: take the DDS send time when rclpy exposes it (Jazzy+), so a busy
        # executor delivering chunks late and in bursts does not shift them in time.
        audio_cb = self._on_float32_with_info if _HAS_MESSAGE_INFO else self._on_audio
        return [_Input("image", image_type, image_cb, 5), _Input("audio", Float32MultiArray, audio_cb, 100)]

    def _create_subscriptions(self) -> None:
        self._watch_since = time.monotonic()
        for inp in self._inputs():
            self._last_rx[inp.role] = None
            self._subscribe(inp, self._wanted_qos(inp))

    def _subscribe(self, inp: _Input, qos_name: str) -> None:
        events = SubscriptionEventCallbacks(incompatible_qos=lambda info: self._incompatible_qos(inp.role, info))
        sub = self.create_subscription(inp.msg_type, inp.role, inp.callback, input_qos(qos_name, inp.depth),
                                       event_callbacks=events)
        self._subs[inp.role] = _Subscribed(inp, sub, qos_name)

    def _wanted_qos(self, inp: _Input) -> str:
        """Profile for ``inp``: the fixed one, the qos parameter, or (qos: auto) what its publishers offer."""
        if inp.fixed_qos is not None and self.values["qos"] != "auto":
            return inp.fixed_qos
        if self.values["qos"] != "auto":
            return self.values["qos"]
        return auto_qos(self.get_publishers_info_by_topic(self.resolve_topic_name(inp.role)))

    def _check_qos(self) -> None:
        """qos: auto — resubscribe when the publishers' reliability changed (image_pipeline's getTopicQosProfile, re-evaluated)."""
        if self.values["qos"] != "auto" or not self._active:
            return
        for role, entry in list(self._subs.items()):
            wanted = self._wanted_qos(entry.input)
            if wanted == entry.qos:
                continue
            offered = _offered(self.get_publishers_info_by_topic(entry.sub.topic_name))
            self.warnings.warn("qos_change", f"qos auto: publishers on '{entry.sub.topic_name}' offer {offered}: "
                               f"resubscribing {QOS_LABEL[wanted]} (was {QOS_LABEL[entry.qos]})", level="info")
            self.destroy_subscription(entry.sub)
            self._subscribe(entry.input, wanted)

    def _incompatible_qos(self, role: str, info) -> None:
        policy = getattr(info.last_policy_kind, "name", info.last_policy_kind)
        topic = self.resolve_topic_name(role)
        if self.values["qos"] == "auto":
            # Transient: the next QoS check resubscribes with a profile every publisher matches.
            self.warnings.warn("qos_incompatible", f"a publisher on '{topic}' offers incompatible QoS (policy {policy}); "
                               "qos auto resubscribes to match it", level="info")
            return
        self.warnings.warn("qos_mismatch", (
            f"a publisher on '{topic}' offers QoS incompatible with ours "
            f"(policy {policy}, {info.total_count} publisher(s) so far): its messages will NOT arrive. "
            f"This node requests qos={self.values['qos']}; set the 'qos' parameter to match "
            f"(qos:=auto follows the publishers; best-effort publishers need qos:=sensor_data)"))

    def _on_image_with_info(self, msg, info) -> None:
        # Publication sequence numbers reveal frames lost in transport or overwritten in the
        # keep-last input queue before this callback ran (a busy executor); they are counted too.
        seq, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if seq is not None and gid is not None:
            key = str(gid.get("data", gid)) if isinstance(gid, dict) else str(gid)
            last = self._image_seq.get(key)
            if last is not None and seq > last + 1:
                self.lost += seq - last - 1
            self._image_seq[key] = seq
        self._on_image(msg)

    def _on_image(self, msg) -> None:
        self._last_rx["image"] = time.monotonic()
        try:
            check_image_msg(msg)
        except InputError as exc:
            self.warnings.warn("bad_image", f"image rejected: {exc}")
            return
        self.stream.offer_frame(msg, stamp_seconds(msg.header.stamp))

    def _on_audio_info(self, msg) -> None:
        self._last_rx["audio_info"] = time.monotonic()
        self._audio_info = msg

    def _on_float32_with_info(self, msg, info) -> None:
        sent_ns = info.get("source_timestamp") or info.get("received_timestamp")
        self._on_audio(msg, sent_ns * 1e-9 if sent_ns else None)

    def _on_audio(self, msg, sent: float | None = None) -> None:
        self._last_rx["audio"] = time.monotonic()
        try:
            if self.audio_transport == "audio_common":
                chunk = at.audio_common_to_chunk(msg, self._audio_info)
            else:
                arrival = sent if sent is not None else self._now()
                chunk = at.float32_to_chunk(msg, self.values["audio.sample_rate"], arrival, self.stream.ring.latest_time)
            events = self.stream.add_audio(chunk.samples, chunk.t_first, chunk.sample_rate)
        except InputError as exc:
            self.warnings.warn("bad_audio", f"audio chunk rejected: {exc}")
            return
        self.pacing.add(len(chunk.samples), sent)
        for event in events:
            kind = "audio_gap" if "gap" in event else "audio_timing"
            self.warnings.warn(kind, event)

    def _stalled_inputs(self) -> dict[str, tuple[float, bool, list]]:
        """{topic: (silent_for_s, ever_received, publishers)} for inputs with publishers but no data for stall_timeout_s."""
        now, timeout = time.monotonic(), self.values["stall_timeout_s"]
        out = {}
        for role, entry in self._subs.items():
            last = self._last_rx.get(role)
            silent_for = now - (last if last is not None else self._watch_since)
            publishers = self.get_publishers_info_by_topic(entry.sub.topic_name)
            if publishers and silent_for >= timeout:
                out[entry.sub.topic_name] = (silent_for, last is not None, publishers)
        return out

    def _watch_inputs(self) -> None:
        """Warn about topics that have publishers but deliver nothing, and about a wrong declared rate."""
        for topic, (silent_for, ever, publishers) in self._stalled_inputs().items():
            what = "stalled" if ever else "silent"
            self.warnings.warn(f"{what}:{topic}", (
                f"'{topic}' has {len(publishers)} publisher(s) but nothing arrived for {silent_for:.1f} s "
                f"(publishers offer reliability {_offered(publishers)}, this node uses qos={self.values['qos']})"))
        measured = self.pacing.rate() if self.audio_transport == "float32" else None
        declared = self.values["audio.sample_rate"]
        if measured is not None and not 0.8 < measured / declared < 1.25:
            self.warnings.warn("sample_rate", (
                f"audio arrives at ~{measured:.0f} samples/s per channel but audio.sample_rate is {declared}: "
                f"windows will have the wrong duration; set audio.sample_rate to the publisher's rate"))
        busy = self.stream.busy_s() if self.stream is not None else 0.0
        if busy >= self.values["stall_timeout_s"]:
            self.warnings.warn("worker_stall", f"the inference worker has been on one frame for {busy:.1f} s "
                               f"(> stall_timeout_s); newer frames wait in the slot and the newest is processed next")

    # ------------------------------------------------------------------ outputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_output(self, out: StreamOutput) -> None:
        """Publish one processed frame (called from the worker thread)."""
        if not self.context.ok():
            return  # SIGINT shut the context down mid-frame: publishers and logging are gone
        header, result = out.frame.payload.header, out.result
        self._pubs["mask"].publish(numpy_to_image_msg(result.mask.astype(np.uint8) * 255, "mono8", header, Image))
        self._pubs["heatmap"].publish(numpy_to_image_msg(result.heatmap.astype(np.float32), "32FC1", header, Image))
        if self._pubs["overlay"].get_subscription_count() > 0:
            from avs_core.visualize import overlay

            image = overlay(out.rgb, result.mask, result.heatmap, result.labels, alpha=self.values["overlay_alpha"])
            self._pubs["overlay"].publish(numpy_to_image_msg(image, "bgr8", header, Image))
        self._pubs["cues"].publish(String(data=json.dumps(self._report(out))))

    def _report(self, out: StreamOutput) -> dict[str, Any]:
        """The JSON published on ``cues`` for one frame; add a key here for a new report field."""
        result, cues, stamp = out.result, out.cues, out.frame.stamp
        return {
            "stamp": stamp,
            "frame_id": out.frame.payload.header.frame_id,
            "window": {"t_start": out.t_start, "t_end": stamp, "audio_coverage": round(out.coverage, 3)},
            "silent": bool(result.silent),
            "labels": [[str(label), round(float(score), 4)] for label, score in result.labels],
            "mask_fraction": round(float(result.mask.mean()), 5),
            "level_dbfs": _jsonable(result.info.get("level_dbfs")),
            "cues": {"texts": list(cues.texts), "source": cues.source, "age_s": _jsonable(cues.age_s)} if cues else None,
            "timings_ms": {k: round(float(v), 2) for k, v in result.timings_ms.items()},
        }

    # ------------------------------------------------------------------ parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        updates: dict[str, Any] = {}
        for param in params:
            spec = self._specs.get(param.name)
            if spec is None:
                return SetParametersResult(successful=False, reason=f"unknown parameter {param.name}")
            if not spec.runtime:
                return SetParametersResult(successful=False, reason=f"{param.name} is fixed while running (restart the node)")
            value = param.value
            if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            reason = spec.check(value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            updates[param.name] = value
        pipeline_updates = {k[len("pipeline."):]: v for k, v in updates.items() if k.startswith("pipeline.")}
        if pipeline_updates and self.pipeline is not None:
            try:
                self.pipeline.update(**pipeline_updates)
            except ConfigError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        self.values.update(updates)
        self._apply_settings()
        if "warn_interval_s" in updates:
            self.warnings.interval_s = updates["warn_interval_s"]
        if updates:
            self.get_logger().info(f"parameters updated: {updates}")
        return SetParametersResult(successful=True)

    def _apply_settings(self) -> None:
        """Copy the run-time parameters the stream processor reads into its settings."""
        if self.stream is None:
            return
        settings = self.stream.settings
        settings.window_s = float(self.values["pipeline.window_s"])
        settings.wait_s = self.values["audio.wait_s"]
        settings.min_coverage = self.values["audio.min_coverage"]
        settings.max_rate_hz = self.values["max_rate_hz"]
        settings.max_frame_age_s = self.values["max_frame_age_s"]

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        """One status per concern (diagnostic_updater style): processing, then each input topic."""
        array = DiagnosticArray(status=[self._processing_status()] + self._input_statuses())
        array.header.stamp = self.get_clock().now().to_msg()
        self._pubs["diagnostics"].publish(array)

    def _hardware_id(self) -> str:
        return f"{self.pipeline.device if self.pipeline is not None else 'none'}"

    def _processing_status(self) -> DiagnosticStatus:
        stats = self.stream.stats() if self.stream is not None else {}
        values = {k: "None" if v is None else str(v) for k, v in stats.items()}
        values.update({
            "device": self._hardware_id(),
            "frames_lost_before_node": str(self.lost) if _HAS_MESSAGE_INFO else "unknown",
            "rss_mb": f"{rss_mb():.1f}",
        })
        values.update({f"warnings.{k}": str(v) for k, v in self.warnings.snapshot().items()})
        busy = self.stream.busy_s() if self.stream is not None else 0.0
        if self.stream is None or not self.stream.alive:
            level, message = DiagnosticStatus.ERROR, "inference worker is not running"
        elif busy >= self.values["stall_timeout_s"]:
            level, message = DiagnosticStatus.WARN, f"inference worker stuck on one frame for {busy:.1f} s"
        else:
            level, message = DiagnosticStatus.OK, "running"
        return DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: sounding-object segmentation",
                                message=message, hardware_id=self._hardware_id(),
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])

    def _input_statuses(self) -> list[DiagnosticStatus]:
        stalled = self._stalled_inputs()
        out = []
        for role, entry in self._subs.items():
            topic = entry.sub.topic_name
            publishers = self.get_publishers_info_by_topic(topic)
            last = self._last_rx.get(role)
            values = {"topic": topic, "qos_setting": self.values["qos"], "qos_in_use": QOS_LABEL[entry.qos],
                      "publishers": str(len(publishers)), "publishers_offer": _offered(publishers),
                      "last_message_age_s": f"{time.monotonic() - last:.2f}" if last is not None else "never"}
            if topic in stalled:
                level, message = DiagnosticStatus.WARN, f"no data for {stalled[topic][0]:.1f} s from {len(publishers)} publisher(s)"
            elif not publishers:
                level, message = DiagnosticStatus.WARN, "no publisher"
            else:
                level, message = DiagnosticStatus.OK, f"receiving ({QOS_LABEL[entry.qos]})"
            out.append(DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: input {role}",
                                        message=message, hardware_id=self._hardware_id(),
                                        values=[KeyValue(key=k, value=v) for k, v in values.items()]))
        return out


def _jsonable(value):
    if value is None:
        return None
    value = float(value)
    return round(value, 3) if np.isfinite(value) else None


def run(cfg: dict[str, dict[str, Any]], ros_args: list[str] | None = None) -> int:
    """Start the node with ``cfg`` (sections of config/avs.yaml); returns the exit code."""
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=["avs_node", *(ros_args or [])])
    node = None
    try:
        try:
            node = AvsNode(cfg)
        except AVSError as exc:
            print(f"avs_node: {exc}")
            return 2
        if node.values["autostart"]:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                return 1
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                return 1
        else:
            node.get_logger().info("unconfigured, waiting for lifecycle transitions (autostart is false)")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node._stop_processing()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``avs_node`` executable: ``avs_node [--config avs.yaml] [--ros-args ...]``."""
    from .cli import node_main

    return node_main("avs_node", run, argv)
