"""avs_node: camera + microphone in, stamped sounding-object mask / heatmap / overlay / cues out.

A lifecycle node: configure loads the pipeline and creates publishers, activate
warms the model up, subscribes and starts the worker, deactivate stops them,
cleanup frees the model. With ``autostart`` (default) it configures and activates
itself, so it also runs where nobody drives lifecycle transitions.

Threading: subscription callbacks only validate stamps, append audio to the ring
and drop the newest frame into a capacity-1 slot; one worker thread decodes and
runs inference on the freshest frame, so the executor never blocks on the model
and a slow model drops frames instead of queueing them.
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

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
from avs_core.streaming import AudioRing, ChunkPacing, LatencyStats, LatestSlot, RateMeter
from avs_core.types import Window

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


def input_qos(name: str, depth: int) -> QoSProfile:
    if name == "reliable":
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    profile = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in ("reliability", "durability", "history")}, depth=depth)
    return profile


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
        self._refresher = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._subs: list = []
        self._timers: list = []
        self._pubs: dict[str, Any] = {}

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from avs_core.pipeline import AVSPipeline

        try:
            self.audio_transport = at.resolve_transport(self.values["audio.transport"])
            self.pipeline = AVSPipeline.from_config(pipeline_from_parameters(self.values, self._cfg.get("pipeline", {})))
        except Exception as exc:  # noqa: BLE001 - AVSError names the missing asset/key; anything else is reported too
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.ring = AudioRing(capacity_s=self.values["audio.buffer_s"])
        self.slot: LatestSlot = LatestSlot()
        self.image_rate, self.audio_rate, self.sample_rate_meter = RateMeter(), RateMeter(), RateMeter()
        self.pacing = ChunkPacing()
        self.processed_rate = RateMeter()
        self.latency, self.inference = LatencyStats(), LatencyStats()
        self.stale = self.processed = self.lost = 0
        self._image_seq: dict[str, int] = {}
        self._last_stamp: float | None = None
        self._audio_info = None
        self._last_rx: dict[str, float | None] = {}
        self._last_coverage: float | None = None
        for name, kind in (("mask", Image), ("heatmap", Image), ("overlay", Image), ("cues", String)):
            self._pubs[name] = self.create_lifecycle_publisher(kind, name, 10)
        self._pubs["diagnostics"] = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)
        if self.values["cue_refresh_s"] > 0:
            from avs_core.cues.providers import build_cue_provider
            from avs_core.cues.refresher import CueRefresher

            cues_cfg = self._cfg.get("cues") or {}
            top_k = int((cues_cfg.get("tagger") or {}).get("top_k", 10))
            try:
                # The tagger backend shares the pipeline's tagger: no second model in memory.
                provider = build_cue_provider(cues_cfg, tag_fn=lambda samples, sr: self.pipeline.audio_tags(samples, sr, k=top_k))
            except AVSError as exc:
                self.get_logger().error(f"configure failed: scene cues: {exc}")
                return TransitionCallbackReturn.FAILURE
            self._refresher = CueRefresher(provider, self.values["cue_refresh_s"])
        cues = self._refresher.provider.source if self._refresher is not None else "off"
        self.get_logger().info(f"configured: model {self.values.get('pipeline.model')} on {self.pipeline.device}, "
                               f"image {self.values['image_transport']}, audio {self.audio_transport}, qos {self.values['qos']}, "
                               f"cues {cues}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        t0 = time.perf_counter()
        try:
            self.pipeline.warmup()
        except Exception as exc:  # noqa: BLE001 - a model that cannot run one frame must not go active
            self.get_logger().error(f"warm-up failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"warm-up done in {time.perf_counter() - t0:.1f} s")
        result = super().on_activate(state)  # activates the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        self._stop.clear()
        self.slot = LatestSlot()
        self._worker = threading.Thread(target=self._work, name="avs-worker", daemon=True)
        self._worker.start()
        if self._refresher is not None:
            self._refresher.start()
        self._create_subscriptions()
        self._timers = [self.create_timer(self.values["diagnostics_period_s"], self._publish_diagnostics),
                        self.create_timer(1.0, self._watch_inputs)]
        self.get_logger().info(f"active: subscribed to {', '.join(s.topic_name for s in self._subs)}")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs.clear()
        self.pipeline = self._refresher = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self.pipeline = None
        return TransitionCallbackReturn.SUCCESS

    def _stop_processing(self) -> None:
        self._stop.set()
        if hasattr(self, "slot"):
            self.slot.close()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        if self._refresher is not None:
            self._refresher.stop()
        for sub in self._subs:
            self.destroy_subscription(sub)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subs, self._timers = [], []

    # ------------------------------------------------------------------ inputs
    def _create_subscriptions(self) -> None:
        qos = self.values["qos"]
        events = lambda topic: SubscriptionEventCallbacks(incompatible_qos=lambda info: self._incompatible_qos(topic, info))  # noqa: E731
        image_type = CompressedImage if self.values["image_transport"] == "compressed" else Image
        self._subs.append(self.create_subscription(image_type, "image", self._on_image_with_info if _HAS_MESSAGE_INFO
                                                   else self._on_image, input_qos(qos, 5), event_callbacks=events("image")))
        if self.audio_transport == "audio_common":
            self._subs.append(self.create_subscription(at.AudioDataStamped, "audio", self._on_audio, input_qos(qos, 100),
                                                       event_callbacks=events("audio")))
            self._subs.append(self.create_subscription(at.AudioInfo, "audio_info", self._on_audio_info, input_qos("reliable", 1),
                                                       event_callbacks=events("audio_info")))
        else:
            # Unstamped audio: take the DDS send time when rclpy exposes it (Jazzy+), so a busy
            # executor delivering chunks late and in bursts does not shift them in time.
            callback = self._on_float32_with_info if _HAS_MESSAGE_INFO else self._on_audio
            self._subs.append(self.create_subscription(Float32MultiArray, "audio", callback, input_qos(qos, 100),
                                                       event_callbacks=events("audio")))
        now = time.monotonic()
        self._watch_since = now
        # Roles in creation order: image, audio[, audio_info]; the watchdog reports by topic name.
        self._last_rx = {role: None for role in ("image", "audio", "audio_info")[:len(self._subs)]}

    def _incompatible_qos(self, topic: str, info) -> None:
        policy = getattr(info.last_policy_kind, "name", info.last_policy_kind)
        self.warnings.warn("qos_mismatch", (
            f"a publisher on '{self.resolve_topic_name(topic)}' offers QoS incompatible with ours "
            f"(policy {policy}, {info.total_count} publisher(s) so far): its messages will NOT arrive. "
            f"This node requests qos={self.values['qos']}; set the 'qos' parameter to match "
            f"(best-effort publishers need qos:=sensor_data)"))

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
        self.image_rate.tick()
        stamp = stamp_seconds(msg.header.stamp)
        if stamp == 0.0:
            self.warnings.warn("zero_stamp", "image with a zero header stamp: cannot align it with audio, dropped")
            return
        if self._last_stamp is not None and stamp <= self._last_stamp:
            kind = "duplicate_stamp" if stamp == self._last_stamp else "out_of_order_stamp"
            self.warnings.warn(kind, f"image stamp {stamp:.3f} is not after the previous {self._last_stamp:.3f}: dropped")
            return
        try:
            check_image_msg(msg)
        except InputError as exc:
            self.warnings.warn("bad_image", f"image rejected: {exc}")
            return
        self._last_stamp = stamp
        self.slot.put(msg)

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
                chunk = at.float32_to_chunk(msg, self.values["audio.sample_rate"], arrival, self.ring.latest_time)
            events = self.ring.append(chunk.samples, chunk.t_first, chunk.sample_rate)
        except InputError as exc:
            self.warnings.warn("bad_audio", f"audio chunk rejected: {exc}")
            return
        self.audio_rate.tick()
        self.sample_rate_meter.tick(len(chunk.samples))
        self.pacing.add(len(chunk.samples), sent)
        for event in events:
            kind = "audio_gap" if "gap" in event else "audio_timing"
            self.warnings.warn(kind, event)

    def _watch_inputs(self) -> None:
        """Warn about topics that have publishers but deliver nothing, and about a wrong declared rate."""
        now = time.monotonic()
        timeout = self.values["stall_timeout_s"]
        for sub, last in zip(self._subs, list(self._last_rx.values())):
            topic = sub.topic_name
            silent_for = now - (last if last is not None else self._watch_since)
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers or silent_for < timeout:
                continue
            offered = sorted({getattr(p.qos_profile.reliability, "name", str(p.qos_profile.reliability)) for p in publishers})
            what = "stalled" if last is not None else "silent"
            self.warnings.warn(f"{what}:{topic}", (
                f"'{topic}' has {len(publishers)} publisher(s) but nothing arrived for {silent_for:.1f} s "
                f"(publishers offer reliability {'/'.join(offered)}, this node uses qos={self.values['qos']})"))
        measured = self.pacing.rate() if self.audio_transport == "float32" else None
        declared = self.values["audio.sample_rate"]
        if measured is not None and not 0.8 < measured / declared < 1.25:
            self.warnings.warn("sample_rate", (
                f"audio arrives at ~{measured:.0f} samples/s per channel but audio.sample_rate is {declared}: "
                f"windows will have the wrong duration; set audio.sample_rate to the publisher's rate"))

    # ------------------------------------------------------------------ worker
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _work(self) -> None:
        next_start = 0.0
        while not self._stop.is_set() and self.context.ok():
            msg = self.slot.get(timeout=0.2)
            if msg is None:
                continue
            max_rate = self.values["max_rate_hz"]
            if max_rate > 0 and time.monotonic() < next_start:
                # Rate cap: wait, but let a newer frame replace this one meanwhile.
                self._stop.wait(next_start - time.monotonic())
                newer = self.slot.get(timeout=0)
                msg = newer if newer is not None else msg
            next_start = time.monotonic() + (1.0 / max_rate if max_rate > 0 else 0.0)
            try:
                self._process(msg)
            except Exception as exc:  # noqa: BLE001 - the worker must survive any model/input failure
                if not self.context.ok():
                    return  # SIGINT shut the context down mid-frame: publishers and logging are gone
                self.warnings.warn("processing_error", f"frame skipped: {type(exc).__name__}: {exc}", level="error")

    def _process(self, msg) -> None:
        stamp = stamp_seconds(msg.header.stamp)
        age = self._now() - stamp
        if age > self.values["max_frame_age_s"]:
            self.stale += 1
            self.warnings.warn("stale_frame", f"frame {stamp:.3f} is {age:.2f} s old (> max_frame_age_s): dropped")
            return
        if not self._wait_for_audio(stamp):
            self.stale += 1  # a newer frame arrived while waiting: process that one instead
            return
        try:
            rgb = compressed_msg_to_rgb(msg) if isinstance(msg, CompressedImage) else image_msg_to_rgb(msg)
        except InputError as exc:
            self.warnings.warn("bad_image", f"image rejected: {exc}")
            return
        window_s = float(self.values["pipeline.window_s"])
        win = self.ring.window(stamp, window_s)
        if win is None or win.coverage == 0.0:
            self.warnings.warn("no_audio", f"no audio covers the window ending at {stamp:.3f}: processing it as silence")
            sr = win.sample_rate if win is not None else 16000
            win_samples, t_start, coverage = np.zeros(int(window_s * sr), np.float32), stamp - window_s, 0.0
        else:
            sr, win_samples, t_start, coverage = win.sample_rate, win.samples, win.t_start, win.coverage
        cues = None
        if self._refresher is not None:
            self._refresher.offer(rgb, win_samples, sr, stamp)
            cues = self._refresher.latest(now=stamp)
        result = self.pipeline(Window(frame=rgb, audio=win_samples, sample_rate=sr, t_start=t_start, t_end=stamp,
                                      # No cues yet is an empty list: text-cued models (TeSO) pad it.
                                      cues=list(cues.texts) if cues is not None else []))
        self._publish(msg.header, rgb, result, t_start, coverage, cues)
        self.processed += 1
        self.processed_rate.tick()
        self._last_coverage = coverage
        self.inference.add(result.timings_ms.get("total", 0.0) / 1e3)
        self.latency.add(self._now() - stamp)

    def _wait_for_audio(self, stamp: float) -> bool:
        """Give audio up to ``stamp`` a moment to arrive; False if a newer frame superseded this one."""
        deadline = time.monotonic() + self.values["audio.wait_s"]
        while time.monotonic() < deadline and not self._stop.is_set():
            latest = self.ring.latest_time
            if latest is not None and latest >= stamp - self.ring.tolerance_s:
                return True
            if self.slot.depth():
                return False
            time.sleep(0.005)
        return True

    def _publish(self, header, rgb, result, t_start: float, coverage: float, cues) -> None:
        self._pubs["mask"].publish(numpy_to_image_msg(result.mask.astype(np.uint8) * 255, "mono8", header, Image))
        self._pubs["heatmap"].publish(numpy_to_image_msg(result.heatmap.astype(np.float32), "32FC1", header, Image))
        if self._pubs["overlay"].get_subscription_count() > 0:
            from avs_core.visualize import overlay

            image = overlay(rgb, result.mask, result.heatmap, result.labels, alpha=self.values["overlay_alpha"])
            self._pubs["overlay"].publish(numpy_to_image_msg(image, "bgr8", header, Image))
        report = {
            "stamp": stamp_seconds(header.stamp),
            "frame_id": header.frame_id,
            "window": {"t_start": t_start, "t_end": stamp_seconds(header.stamp), "audio_coverage": round(coverage, 3)},
            "silent": bool(result.silent),
            "labels": [[str(label), round(float(score), 4)] for label, score in result.labels],
            "mask_fraction": round(float(result.mask.mean()), 5),
            "level_dbfs": _jsonable(result.info.get("level_dbfs")),
            "cues": {"texts": list(cues.texts), "source": cues.source, "age_s": _jsonable(cues.age_s)} if cues else None,
            "timings_ms": {k: round(float(v), 2) for k, v in result.timings_ms.items()},
        }
        self._pubs["cues"].publish(String(data=json.dumps(report)))

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
        if "warn_interval_s" in updates:
            self.warnings.interval_s = updates["warn_interval_s"]
        if updates:
            self.get_logger().info(f"parameters updated: {updates}")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        lat, inf = self.latency.summary(), self.inference.summary()
        values = {
            "device": self.pipeline.device if self.pipeline is not None else "none",
            "image_rate_hz": f"{self.image_rate.rate():.2f}",
            "audio_chunk_rate_hz": f"{self.audio_rate.rate():.2f}",
            "audio_samples_per_s": f"{self.sample_rate_meter.rate():.0f}",
            "processed_rate_hz": f"{self.processed_rate.rate():.2f}",
            "frames_accepted": str(self.slot.accepted),
            "frames_processed": str(self.processed),
            "frames_dropped_superseded": str(self.slot.dropped),
            "frames_dropped_stale": str(self.stale),
            "frames_lost_before_node": str(self.lost) if _HAS_MESSAGE_INFO else "unknown",
            "queue_depth": str(self.slot.depth()),
            "latency_p50_ms": str(lat["p50_ms"]),
            "latency_p95_ms": str(lat["p95_ms"]),
            "latency_p99_ms": str(lat["p99_ms"]),
            "inference_p50_ms": str(inf["p50_ms"]),
            "audio_coverage": str(self._last_coverage),
            "rss_mb": f"{rss_mb():.1f}",
        }
        values.update({f"warnings.{k}": str(v) for k, v in self.warnings.snapshot().items()})
        stalled = any(k.startswith(("stalled:", "silent:")) for k in self.warnings.snapshot())
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if stalled else DiagnosticStatus.OK,
            name=f"{self.get_fully_qualified_name()}: sounding-object segmentation",
            message="input stalled at some point (see warnings.*)" if stalled else "running",
            hardware_id=values["device"],
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._pubs["diagnostics"].publish(array)


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
