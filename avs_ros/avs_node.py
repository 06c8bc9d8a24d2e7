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
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.clock import Clock, ClockType, JumpThreshold
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from avs_core.errors import AVSError, ConfigError, InputError
from avs_core.stream_processor import StreamOutput, StreamProcessor, StreamSettings
from avs_core.streaming import ChunkPacing
from avs_core.throttle import ThrottledWarnings

from . import audio_transport as at
from . import dds
from .allocator import keep_freed_buffers
from .detections import detection_types, detections_msg
from .direction import DirectionIO
from .conversions import backend as image_backend
from .conversions import check_image_msg, compressed_msg_to_rgb, image_msg_to_rgb, numpy_to_image_msg, stamp_seconds
from .node_main import node_main, quiet_after_shutdown, ros_session
from .params import declare, node_specs, pipeline_from_parameters

# Jazzy+ rclpy passes MessageInfo (DDS source/receive timestamps) to two-argument callbacks.
_HAS_MESSAGE_INFO = hasattr(rclpy.subscription.Subscription, "CallbackType")

try:  # rclpy >= Iron
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

# Published topics (name, type), created at configure; add a row for a new output.
# mask/camera_info: the camera's CameraInfo under the mask's header, so consumers that pair an
# image with its camera info (depth_image_proc, RViz Camera) can use the mask.
OUTPUTS = (("mask", Image), ("heatmap", Image), ("overlay", Image), ("cues", String), ("mask/camera_info", CameraInfo))
VISION_MSGS = detection_types()  # Detection2DArray on `detections` when vision_msgs is installed
QOS_LABEL = {"reliable": "reliable", "sensor_data": "best-effort (sensor_data)", "latched": "reliable transient-local"}
# Stream time that runs backwards by more than this (bag loop, simulator reset, camera restart)
# restarts the timeline; stamps further than this ahead of the node's clock are refused.
TIME_JUMP_S = 2.0
QOS_CHECK_PERIOD_S = 0.5  # how soon qos: auto follows a publisher that appeared or changed
WORKER_JOIN_S = 10.0  # how long deactivate waits for the worker to finish its frame


def input_qos(name: str, depth: int) -> QoSProfile:
    if name == "latched":  # what audio_capture_node offers for AudioInfo: late joiners still get the last one
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
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
        self._jump_handler = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-TIME_JUMP_S), on_clock_change=False),
            post_callback=self._on_clock_jump)
        self.warnings = ThrottledWarnings(self.get_logger(), self.values["warn_interval_s"])
        self.pipeline = None
        self.direction: DirectionIO | None = None  # microphone-array direction I/O (pipeline.doa configured)
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
        self._dds_profile = dds.profile_in_use()
        self._shm_bytes = dds.shm_segment_bytes(self._dds_profile)

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
                               f"image {self.values['image_transport']} ({self._image_backend}), audio {self.audio_transport}, "
                               f"qos {self.values['qos']}, "
                               f"cues {cues}; DDS profile {self._dds_profile or 'none (Fast DDS defaults)'}, "
                               f"shared-memory segment {self._shm_bytes / 2**20:.1f} MiB")
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        from avs_core.pipeline import AVSPipeline

        self._image_backend = image_backend()  # a missing image decoder fails here, not on the first frame
        # Publishers first, so a failure anywhere later exercises the rollback in on_configure.
        for name, kind in OUTPUTS:
            self._pubs[name] = self.create_lifecycle_publisher(kind, name, 10)
        self._pubs["diagnostics"] = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)
        self.audio = at.AudioDecoder(self.values["audio.transport"], self.values["audio.sample_rate"])
        self.audio_transport = self.audio.transport
        if VISION_MSGS is not None:
            self._pubs["detections"] = self.create_lifecycle_publisher(VISION_MSGS.Detection2DArray, "detections", 10)
        self.pipeline = AVSPipeline.from_config(pipeline_from_parameters(self.values, self._cfg.get("pipeline", {})))
        segment = self.pipeline
        if self.pipeline.direction is not None:
            self.direction = DirectionIO(self, self._pubs, self.values["doa.frame_id"], self.values["doa.marker"],
                                         self.warnings.warn)
            segment = self.direction.wrap(self.pipeline, lambda: self._camera_info)
        if self.values["cue_refresh_s"] > 0:
            from avs_core.cues.providers import build_cue_provider
            from avs_core.cues.refresher import CueRefresher

            cues_cfg = pipeline_from_parameters(self.values, self._cfg.get("cues") or {}, prefix="cues")
            top_k = int((cues_cfg.get("tagger") or {}).get("top_k", 10))
            # The tagger backend shares the pipeline's tagger: no second model in memory.
            provider = build_cue_provider(cues_cfg, tag_fn=lambda samples, sr: self.pipeline.audio_tags(samples, sr, k=top_k))
            self._refresher = CueRefresher(provider, self.values["cue_refresh_s"])
        self.stream = StreamProcessor(segment, decode=_decode, on_output=self._on_output,
                                      settings=StreamSettings(), clock=self._now, warn=self.warnings.warn,
                                      refresher=self._refresher, buffer_s=self.values["audio.buffer_s"])
        self._apply_settings()
        self.pacing = ChunkPacing(clock=self._now)
        self._camera_info = None  # latest CameraInfo (also read by direction fusion)
        self._last_image_stamp: float | None = None
        self._restarted_at = float("-inf")  # monotonic time of the last timeline restart
        self._clock_seen: tuple[float, float] | None = None  # (ROS time, monotonic) when it last advanced
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
        # Steady time: under use_sim_time, ROS-clock timers stop with /clock, and so would the
        # watchdog that reports it.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._timers = [self.create_timer(self.values["diagnostics_period_s"], self._publish_diagnostics, clock=steady),
                        self.create_timer(QOS_CHECK_PERIOD_S, self._check_qos, clock=steady),
                        self.create_timer(1.0, self._watch_inputs, clock=steady)]
        self.get_logger().info(f"active: subscribed to {', '.join(f'{s.sub.topic_name} [{QOS_LABEL[s.qos]}]' for s in self._subs.values())}"
                               + (" (qos auto: follows the publishers)" if self.values["qos"] == "auto" else ""))
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
        self.direction = None
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
        inputs = [_Input("image", image_type, image_cb, 5), _Input("camera_info", CameraInfo, self._on_camera_info, 5),
                  _Input("audio", self.audio.msg_type, self._on_audio, 100)]
        if self.audio.info_type is not None:
            # audio_capture_node latches AudioInfo (keep-last 1, transient-local) and repeats it
            # only every 5 s: a volatile subscriber would reject audio until then.
            inputs.append(_Input("audio_info", self.audio.info_type, self._on_audio_info, 1, fixed_qos="latched"))
        return inputs

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
        if inp.fixed_qos is not None and (self.values["qos"] != "auto" or inp.fixed_qos == "latched"):
            return inp.fixed_qos
        if self.values["qos"] != "auto":
            return self.values["qos"]
        publishers = self.get_publishers_info_by_topic(self.resolve_topic_name(inp.role))
        # Publishers of another type never match (the type check warns about them): they do not vote.
        return auto_qos([p for p in publishers if p.topic_type == at.type_name(inp.msg_type)])

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
        self._check_frame_size(msg)
        stamp = stamp_seconds(msg.header.stamp)
        if stamp != 0.0 and not self._sane_stamp("image", stamp):
            return
        last = self._last_image_stamp
        if last is not None and stamp != 0.0 and stamp < last - TIME_JUMP_S:
            self._restart_timeline(f"image stamps jumped back {last - stamp:.1f} s ({last:.3f} -> {stamp:.3f})")
        if stamp != 0.0:
            self._last_image_stamp = stamp
        self.stream.offer_frame(msg, stamp)

    def _sane_stamp(self, role: str, stamp: float) -> bool:
        """False (with a warning) for a stamp too far ahead of this node's ROS clock to be real."""
        now = self._now()
        ahead = stamp - now
        if ahead <= TIME_JUMP_S or now == 0.0:  # sim time before the first /clock message: nothing to compare with
            return True
        clock = "sim time (/clock)" if self.get_parameter("use_sim_time").value else "system time"
        self.warnings.warn(f"future_stamp:{role}", (
            f"{role} stamp {stamp:.3f} is {ahead:.1f} s ahead of this node's clock ({clock}): dropped. The publisher's "
            "clock is wrong, or it runs in sim time and this node does not (set use_sim_time to match)"))
        return False

    def _restart_timeline(self, why: str) -> None:
        """Stream time went back (bag loop, simulator reset): forget audio and stamps of the old timeline.

        The clock and the image stamps usually both show one jump, in either order (separate
        topics): it is logged once.
        """
        now = time.monotonic()
        if now - self._restarted_at > TIME_JUMP_S:
            self.get_logger().warning(f"{why}: clearing the audio buffer and the stamp guard; processing resumes "
                                      f"within one window ({self.values['pipeline.window_s']} s)")
        self._restarted_at = now
        self.stream.reset_timeline()
        self.audio.reset()
        self._last_image_stamp = None

    def _on_clock_jump(self, jump) -> None:
        """The ROS clock went back by more than TIME_JUMP_S (a /clock publisher looped or restarted)."""
        if self.stream is not None:
            self._restart_timeline(f"the ROS clock jumped back {-jump.delta.nanoseconds * 1e-9:.1f} s")

    def _on_camera_info(self, msg) -> None:
        self._last_rx["camera_info"] = time.monotonic()
        self._camera_info = msg

    def _check_frame_size(self, msg) -> None:
        """Log a resolution change, and guidance when frames outgrow the shared-memory segment."""
        size = (msg.width, msg.height) if hasattr(msg, "width") else None
        if size is None or size == self._image_size:
            return
        if self._image_size is not None:
            self.warnings.warn("frame_size_change", f"frame size changed from {self._image_size[0]}x{self._image_size[1]} "
                               f"to {size[0]}x{size[1]}: outputs follow the new size", level="info")
        self._image_size = size
        nbytes = len(msg.data)
        if nbytes > self._shm_bytes:
            self.warnings.warn("frame_exceeds_shm", (
                f"a {size[0]}x{size[1]} frame is {nbytes / 2**20:.1f} MiB, more than the {self._shm_bytes / 2**20:.1f} MiB "
                f"Fast DDS shared-memory segment of this node's profile ({self._dds_profile or 'Fast DDS defaults'}): "
                "such frames travel as UDP fragments, and best-effort delivery loses whole frames under load. Give the "
                "camera publisher AND this node a profile with a segment of several frames (config/fastdds.xml, "
                "segment_size), or subscribe to compressed images (image_transport: compressed)"))

    def _on_audio_info(self, msg) -> None:
        self._last_rx["audio_info"] = time.monotonic()
        change = self.audio.info(msg)
        if change:
            self.warnings.warn("audio_info_changed", f"AudioInfo changed mid-stream ({change}): audio is read in the new "
                               "format from now on; windows spanning the change are partly silent")
        for held, received in self.audio.take_held():  # chunks that came before the first AudioInfo
            self._add_audio(held, received)

    def _on_audio(self, msg) -> None:
        self._last_rx["audio"] = time.monotonic()
        # Receipt on the node's ROS clock: sim time under a bag, never the DDS wall-clock stamp.
        self._add_audio(msg, self._now())

    def _add_audio(self, msg, now: float) -> None:
        try:
            chunk = self.audio.decode(msg, now)
            if chunk is None:
                return  # mp3 bytes short of a frame, or held until the first AudioInfo
            if not self._sane_stamp("audio", chunk.t_first):
                return
            events = self.stream.add_audio(chunk.samples, chunk.t_first, chunk.sample_rate)
        except InputError as exc:
            self.warnings.warn("bad_audio", f"audio chunk rejected: {exc}")
            return
        finally:
            while self.audio.notices:
                self.get_logger().warning(self.audio.notices.pop(0))
        self.pacing.add(len(chunk.samples), now)
        for event in events:
            kind = "audio_gap" if "gap" in event else "audio_timing"
            self.warnings.warn(kind, event)

    def _stalled_inputs(self) -> dict[str, tuple[float, bool, list]]:
        """{topic: (silent_for_s, ever_received, publishers)} for inputs with publishers but no data for stall_timeout_s."""
        now, timeout = time.monotonic(), self.values["stall_timeout_s"]
        out = {}
        for role, entry in self._subs.items():
            if role == "audio_info":
                continue  # latched and repeated only every few seconds (if at all): silence is normal
            last = self._last_rx.get(role)
            silent_for = now - (last if last is not None else self._watch_since)
            publishers = [p for p in self.get_publishers_info_by_topic(entry.sub.topic_name)
                          if p.topic_type == at.type_name(entry.input.msg_type)]  # other types: _check_types
            if publishers and silent_for >= timeout:
                out[entry.sub.topic_name] = (silent_for, last is not None, publishers)
        return out

    def _check_types(self) -> None:
        """Publishers of another message type on an input topic never deliver: say which setting fixes it."""
        for role, entry in self._subs.items():
            topic, expected = entry.sub.topic_name, at.type_name(entry.input.msg_type)
            offered = sorted({p.topic_type for p in self.get_publishers_info_by_topic(topic)} - {expected})
            if not offered:
                continue
            fixes = []
            for other in offered:
                transport = at.transport_for_type(other)
                if role == "audio" and transport in at.available_transports():
                    fixes.append(f"set audio.transport:={transport}")
                elif role == "audio" and transport is not None:
                    fixes.append(f"{other} needs audio.transport:={transport}, but the installed audio_common_msgs "
                                 f"does not provide it")
                elif role == "image" and other.startswith("sensor_msgs/msg/") and other.endswith(("/Image", "/CompressedImage")):
                    fixes.append(f"set image_transport:={'compressed' if other.endswith('CompressedImage') else 'raw'}")
            fix = "; ".join(fixes) or f"remap '{role}' to a topic of type {expected}"
            self.warnings.warn(f"wrong_type:{role}", (
                f"'{topic}' carries {', '.join(offered)} but this node subscribes {expected} there "
                f"(audio.transport={self.audio_transport}, image_transport={self.values['image_transport']}): "
                f"those messages never arrive. {fix[0].upper() + fix[1:]}"))

    def _check_clock(self) -> None:
        """Under sim time, a /clock that stops freezes stale-frame and audio checks: say so."""
        if not self.get_parameter("use_sim_time").value:
            self._clock_seen = None
            return
        now, wall = self._now(), time.monotonic()
        if self._clock_seen is None or now != self._clock_seen[0]:
            self._clock_seen = (now, wall)
            return
        frozen = wall - self._clock_seen[1]
        if frozen >= self.values["stall_timeout_s"]:
            self.warnings.warn("clock_stalled", (
                f"use_sim_time is true but the ROS clock has not advanced for {frozen:.1f} s (at {now:.3f}): nothing "
                "publishes /clock (play bags with --clock / avs play, start the simulator) or set use_sim_time:=false"))

    def _watch_inputs(self) -> None:
        """Warn about topics that have publishers but deliver nothing, and about a wrong declared rate."""
        for topic, (silent_for, ever, publishers) in self._stalled_inputs().items():
            what = "stalled" if ever else "silent"
            self.warnings.warn(f"{what}:{topic}", (
                f"'{topic}' has {len(publishers)} publisher(s) but nothing arrived for {silent_for:.1f} s "
                f"(publishers offer reliability {_offered(publishers)}, this node uses qos={self.values['qos']})"))
        self._check_types()
        self._check_clock()
        # Only unstamped int16/float32 audio relies on the declared rate; 2 % separates 44.1 from 48 kHz.
        measured = self.pacing.rate() if self.audio_transport in ("int16", "float32") else None
        declared = self.values["audio.sample_rate"]
        if measured is not None and abs(measured / declared - 1.0) > 0.02:
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
        with quiet_after_shutdown(self):
            self._publish(out)

    def _publish(self, out: StreamOutput) -> None:
        header, result = out.frame.payload.header, out.result
        self._pubs["mask"].publish(numpy_to_image_msg(result.mask.astype(np.uint8) * 255, "mono8", header, Image))
        if self._pubs["heatmap"].get_subscription_count() > 0:  # 4 bytes/pixel: serialize only for someone
            self._pubs["heatmap"].publish(numpy_to_image_msg(result.heatmap.astype(np.float32), "32FC1", header, Image))
        if self._pubs["overlay"].get_subscription_count() > 0:
            from avs_core.visualize import overlay

            image = overlay(out.rgb, result.mask, result.heatmap, result.labels, alpha=self.values["overlay_alpha"],
                            heard_not_visible=result.heard_not_visible)
            self._pubs["overlay"].publish(numpy_to_image_msg(image, "bgr8", header, Image))
        self._pubs["cues"].publish(String(data=json.dumps(self._report(out))))
        if self.direction is not None:
            self.direction.publish(header, result)
        camera_info = self._camera_info
        if camera_info is not None:
            self._pubs["mask/camera_info"].publish(CameraInfo(
                header=header, height=camera_info.height, width=camera_info.width,
                distortion_model=camera_info.distortion_model, d=camera_info.d, k=camera_info.k, r=camera_info.r,
                p=camera_info.p, binning_x=camera_info.binning_x, binning_y=camera_info.binning_y, roi=camera_info.roi))
        if "detections" in self._pubs:
            self._pubs["detections"].publish(detections_msg(VISION_MSGS, header, result))

    def _report(self, out: StreamOutput) -> dict[str, Any]:
        """The JSON published on ``cues`` for one frame; add a key here for a new report field."""
        result, cues, stamp = out.result, out.cues, out.frame.stamp
        return {
            "stamp": stamp,
            "frame_id": out.frame.payload.header.frame_id,
            "window": {"t_start": out.t_start, "t_end": stamp, "audio_coverage": round(out.coverage, 3)},
            "silent": bool(result.silent),
            "labels": [[str(label), round(float(score), 4)] for label, score in result.labels],
            "heard_not_visible": list(result.heard_not_visible),
            "doa": result.info.get("doa"),  # direction of arrival, confidence, chosen instances (pipeline.doa)
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
                if self.has_parameter(param.name):
                    continue  # rclpy's own (use_sim_time, qos_overrides.*, ...): rclpy applies them
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
        settings.audio_span_s = self.pipeline.audio_span_s
        if settings.audio_span_s > self.values["audio.buffer_s"]:
            self.warnings.warn("audio_span", f"the model asks for {settings.audio_span_s:g} s of audio per frame "
                               f"(pipeline.tagger_context_s) but audio.buffer_s keeps {self.values['audio.buffer_s']:g} s: "
                               "it hears that much; raise audio.buffer_s (fixed while running) to give it more")
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
        if self.direction is not None:
            values.update(self.direction.diagnostics())
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
    from rclpy.executors import SingleThreadedExecutor

    dds.apply_profile()  # before the first participant: Fast DDS reads it then
    allocation = keep_freed_buffers()
    with ros_session(["avs_node", *(ros_args or [])]):
        node = None
        try:
            try:
                node = AvsNode(cfg)
            except AVSError as exc:
                print(f"avs_node: {exc}")
                return 2
            node.get_logger().info(allocation)
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
        finally:
            if node is not None:
                node._stop_processing()
                node.destroy_node()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``avs_node`` executable: ``avs_node [--config avs.yaml] [--ros-args ...]``."""
    return node_main("avs_node", run, argv)
