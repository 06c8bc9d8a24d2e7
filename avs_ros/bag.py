"""rosbag2 bags without ``ros2 bag``: write a camera + microphone scene, replay any bag in bag time.

``avs make-bag OUT`` writes the shared photo (grace_hopper) with speech and silence
segments as a rosbag2 bag (sqlite3 or mcap, through the PyPI ``rosbags`` package):
``/camera/image_raw``, ``/camera/camera_info`` and the audio topics of the chosen transport,
stamped from ``--start`` seconds of bag time. Messages are serialized by rclpy from the
installed message classes, so the bag holds exactly what a robot's drivers send.

``avs play BAG [--loop N]`` publishes ``/clock`` and every message at bag time through
rclpy, like ``ros2 bag play --clock --loop``: nodes with ``use_sim_time:=true`` see the
bag's time, and each loop jumps that time back to the bag's start.
"""
from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from avs_core.errors import InputError

IMAGE_TOPIC, CAMERA_INFO_TOPIC, AUDIO_INFO_TOPIC = "/camera/image_raw", "/camera/camera_info", "/audio/audio_info"


@dataclass
class BagScene:
    """What ``write_scene_bag`` wrote: topics and the bag-time intervals of each segment."""

    path: Path
    audio_transport: str
    audio_topic: str
    start: float
    end: float
    segments: list[tuple[str | None, float, float]] = field(default_factory=list)  # (sound or None, t0, t1)


def _msg_class(type_name: str):
    pkg, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def _msg_definitions(pkg: str) -> dict[str, str]:
    """``pkg/msg/Name`` -> .msg text of an installed interface package (its share/ folder)."""
    module = importlib.import_module(pkg)
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(pkg)))
    except Exception:  # noqa: BLE001 - not in the ament index (a prefix found only through sys.path)
        pass
    site = Path(module.__file__).resolve().parent.parent  # <prefix>/lib/pythonX.Y/site-packages
    candidates += [site.parents[2] / "share" / pkg, site.parents[3] / "share" / pkg]
    for share in candidates:
        if (share / "msg").is_dir():
            return {f"{pkg}/msg/{p.stem}": p.read_text() for p in sorted((share / "msg").glob("*.msg"))}
    raise InputError(f"no .msg definitions of {pkg} found (looked in {', '.join(map(str, candidates))})")


def typestore_for(type_names) -> object:
    """The Kilted typestore plus the installed definitions of packages it lacks (audio_common_msgs, ...)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    missing = sorted({t.split("/")[0] for t in type_names if t not in store.fielddefs})
    for pkg in missing:
        types = {}
        for name, text in _msg_definitions(pkg).items():
            types.update(get_types_from_msg(text, name))
        store.register(types)
    return store


def _camera_info(width: int, height: int, header):
    from sensor_msgs.msg import CameraInfo

    f = float(width)  # ~53 degrees horizontal field of view
    info = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
    info.d = [0.0] * 5
    info.k = [f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def write_scene_bag(path: str | Path, image: str = "grace_hopper", segments=(("speech", 4.0), (None, 4.0)),
                    audio_transport: str = "auto", fps: float = 10.0, chunk_s: float = 0.1, start: float = 1000.0,
                    width: int = 320, sample_rate: int = 16000, storage: str = "sqlite3") -> BagScene:
    """Write a still-photo scene with audio ``segments``: (sound asset or None for silence, seconds[, offset into the sound, s])."""
    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from . import audio_transport as at
    from .conversions import numpy_to_image_msg, to_stamp
    from .playback import still_scene

    path = Path(path)
    if path.exists():
        raise InputError(f"{path} exists: rosbag2 writes a new folder")
    encoder = at.AudioEncoder(audio_transport, sample_rate)
    audio_topic = at.DRIVER_TOPICS[encoder.transport]
    segments = [(seg[0], seg[1], seg[2] if len(seg) > 2 else 0.0) for seg in segments]
    scenes = [still_scene(image, sound, width=width, sample_rate=sample_rate) for sound, _, _ in segments]
    topics = {IMAGE_TOPIC: Image, CAMERA_INFO_TOPIC: type(_camera_info(1, 1, Header())), audio_topic: encoder.msg_type}
    if encoder.info_type is not None:
        topics[AUDIO_INFO_TOPIC] = encoder.info_type
    names = {topic: at.type_name(cls) for topic, cls in topics.items()}
    store = typestore_for(names.values())
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    header = lambda t, frame: Header(stamp=to_stamp(t, Time), frame_id=frame)  # noqa: E731
    events: list[tuple[float, str, object]] = []  # (log time, topic, message)
    t, out_segments = start, []
    frame_rgb = scenes[0].frames[0]
    for (sound, seconds, offset), scene in zip(segments, scenes):
        t0 = t
        n_chunks = int(round(seconds / chunk_s))
        chunk = int(round(chunk_s * sample_rate))
        for i in range(n_chunks):
            first = t0 + i * chunk_s
            samples = scene.audio_at(int(round(offset * sample_rate)) + i * chunk, chunk)
            # Logged when the chunk has been captured (its end), stamped with its first sample.
            events.append((first + chunk_s, audio_topic, encoder.encode(samples, header(first, "microphone"))))
        for k in range(int(round(seconds * fps))):
            tf = t0 + (k + 0.5) / fps
            events.append((tf, IMAGE_TOPIC, numpy_to_image_msg(scene.frames[0], "rgb8", header(tf, "camera"), Image)))
            events.append((tf, CAMERA_INFO_TOPIC, _camera_info(frame_rgb.shape[1], frame_rgb.shape[0], header(tf, "camera"))))
        t = t0 + n_chunks * chunk_s
        out_segments.append((sound, t0, t))
    if encoder.info_type is not None:  # the driver latches AudioInfo and repeats it every 5 s
        events += [(start + k * 5.0, AUDIO_INFO_TOPIC, encoder.info_msg()) for k in range(int((t - start) // 5.0) + 1)]
    events.sort(key=lambda e: e[0])
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {topic: writer.add_connection(topic, names[topic], typestore=store) for topic in topics}
        for log_time, topic, msg in events:
            writer.write(conns[topic], int(round(log_time * 1e9)), serialize_message(msg))
    return BagScene(path, encoder.transport, audio_topic, start, t, out_segments)


class BagPlayer:
    """Publishes a bag's messages and ``/clock`` in bag time through ``node`` (rclpy), optionally looping."""

    def __init__(self, node, path: str | Path, rate: float = 1.0, clock_hz: float = 100.0, remap: dict[str, str] | None = None):
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from rosbags.highlevel import AnyReader
        from rosgraph_msgs.msg import Clock

        if rate <= 0:
            raise InputError(f"rate must be > 0, got {rate}")
        self.node, self.path, self.rate, self.clock_hz = node, Path(path), rate, clock_hz
        self._reader = AnyReader([self.path])
        self._reader.open()
        remap = remap or {}
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pubs = {}
        for conn in self._reader.connections:
            try:
                cls = _msg_class(conn.msgtype)
            except (ImportError, AttributeError):
                raise InputError(f"{conn.topic}: message type {conn.msgtype} is not installed here") from None
            qos = latched if conn.msgtype.endswith("/AudioInfo") else reliable
            self._pubs[conn.id] = node.create_publisher(cls, remap.get(conn.topic, conn.topic), qos)
        self._clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self._Clock = Clock
        self._stop = threading.Event()
        self._now_ns = self._reader.start_time
        self.published = 0
        self.loops_done = 0

    @property
    def topics(self) -> list[str]:
        return [p.topic_name for p in self._pubs.values()]

    def _publish_clock(self, ns: int) -> None:
        from builtin_interfaces.msg import Time

        self._clock_pub.publish(self._Clock(clock=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)))

    def _sleep_until(self, wall_start: float, bag_start: int, ns: int) -> bool:
        """Publish /clock at clock_hz up to bag time ``ns``; False when stopped."""
        period = 1.0 / self.clock_hz if self.clock_hz > 0 else None
        while not self._stop.is_set():
            now_ns = bag_start + int((time.monotonic() - wall_start) * self.rate * 1e9)
            if now_ns >= ns:
                return True
            if period is None:
                self._stop.wait((ns - now_ns) / 1e9 / self.rate)
                continue
            self._publish_clock(now_ns)
            self._stop.wait(min(period, (ns - now_ns) / 1e9 / self.rate))
        return False

    def unmatched(self) -> list[str]:
        """Topics (and /clock) that no subscriber has discovered yet."""
        return [p.topic_name for p in [*self._pubs.values(), self._clock_pub] if p.get_subscription_count() == 0]

    def wait_for_subscribers(self, timeout_s: float) -> bool:
        """Wait until every topic has a subscriber, at most ``timeout_s``: messages published before discovery
        completes are lost to volatile subscribers. True when all are matched."""
        deadline = time.monotonic() + timeout_s
        while self.unmatched():
            if time.monotonic() >= deadline or self._stop.wait(0.05):
                return False
        return True

    def play(self, loops: int = 1) -> None:
        """Play ``loops`` times (0: until ``stop``); blocking."""
        while loops == 0 or self.loops_done < loops:
            wall_start, bag_start = time.monotonic(), self._reader.start_time
            for conn, ns, raw in self._reader.messages():
                if not self._sleep_until(wall_start, bag_start, ns):
                    return
                if self.clock_hz > 0:
                    self._publish_clock(ns)
                self._pubs[conn.id].publish(bytes(raw))
                self.published += 1
            self.loops_done += 1

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._reader.close()


def register(sub) -> None:
    p = sub.add_parser("play", help="publish a rosbag2 bag (sqlite3/mcap) and /clock in bag time, like ros2 bag play --clock")
    p.add_argument("bag", help="bag folder")
    p.add_argument("--loop", type=int, nargs="?", const=0, default=1, metavar="N",
                   help="play N times; --loop alone: until Ctrl-C")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument("--clock-hz", type=float, default=100.0, help="/clock publish rate (0: no /clock)")
    p.add_argument("--remap", nargs="*", default=[], metavar="FROM:=TO", help="topic remaps, e.g. /camera/image_raw:=/cam")
    p.add_argument("--wait", type=float, default=3.0,
                   help="seconds to wait for every topic to have a subscriber before playing (default 3)")
    p.set_defaults(func=_run_play)
    m = sub.add_parser("make-bag", help="write the shared photo with speech and silence as a rosbag2 bag")
    m.add_argument("out", help="bag folder to create")
    m.add_argument("--transport", default="auto", help="audio transport of the bag (see avs_node audio.transport)")
    m.add_argument("--segments", nargs="+", default=["speech:4:2", "silence:4"], metavar="SOUND:SECONDS[:OFFSET]",
                   help="audio segments, each SECONDS long from OFFSET s into the sound; 'silence' for none "
                        "(default speech:4:2 silence:4: speech.wav starts with 2 s of room noise)")
    m.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    m.add_argument("--sample-rate", type=int, default=16000, help="audio sample rate, Hz (default 16000)")
    m.add_argument("--start", type=float, default=1000.0, help="bag time of the first message, seconds")
    m.set_defaults(func=_run_make)


def _run_make(args) -> int:
    segments = []
    for item in args.segments:
        sound, seconds, *offset = item.split(":")
        segments.append((None if sound == "silence" else sound, float(seconds), float(offset[0]) if offset else 0.0))
    scene = write_scene_bag(args.out, segments=segments, audio_transport=args.transport, start=args.start, storage=args.storage,
                            sample_rate=args.sample_rate)
    print(f"wrote {scene.path}: {scene.end - scene.start:.1f} s, audio {scene.audio_transport} on {scene.audio_topic}, "
          f"segments {[(s or 'silence', round(a, 2), round(b, 2)) for s, a, b in scene.segments]}")
    return 0


def _run_play(args) -> int:
    import rclpy

    from .node_main import ros_session

    remap = dict(item.split(":=", 1) for item in args.remap)
    with ros_session():
        node = rclpy.create_node("avs_bag_player")
        player = None
        try:
            player = BagPlayer(node, args.bag, rate=args.rate, clock_hz=args.clock_hz, remap=remap)
            print(f"playing {args.bag}: {', '.join(player.topics)}" + (" (looping)" if args.loop == 0 else ""), flush=True)
            if not player.wait_for_subscribers(args.wait):
                print(f"no subscriber after {args.wait:.1f} s on {', '.join(player.unmatched())}: playing anyway", flush=True)
            player.play(args.loop)
            print(f"done: {player.published} messages, {player.loops_done} loop(s)", flush=True)
        finally:
            if player is not None:
                player.close()
            node.destroy_node()
    return 0
