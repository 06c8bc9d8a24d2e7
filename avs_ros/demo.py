"""``avs demo``: play shared assets as live camera + microphone topics through avs_node and report.

Scenes: a still photo with speech (grace_hopper + speech.wav) and the Big Buck
Bunny clip with its soundtrack. avs_node runs in its own process, exactly as it
would on a robot; this process publishes the scenes in real time, records the
mask/heatmap/overlay/cues that come back into ``--out`` (overlay PNGs + report.json)
and prints a summary. Runs for ``--seconds`` of playback plus node start-up.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from avs_core.errors import AVSError

SCENES = ("still", "bbb")


def register(sub) -> None:
    p = sub.add_parser("demo", help="publish shared assets as camera+mic topics through avs_node; record and summarize")
    p.add_argument("--seconds", type=float, default=20.0, help="total playback time, split over the scenes (default 20)")
    p.add_argument("--scenes", nargs="+", choices=SCENES, default=list(SCENES), help="scenes to play, in order")
    p.add_argument("--out", default="out/demo", help="output folder (overlay PNGs, report.json, node.log)")
    p.add_argument("--config", default=None, help="avs YAML for the node (default config/avs.yaml)")
    p.add_argument("--device", default=None, help="override pipeline.device (auto, cpu, cuda)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for the node to become active")
    p.set_defaults(func=run)


def run(args) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from .playback import Player, still_scene, video_scene
    from .allocator import keep_freed_buffers
    from .dds import apply_profile
    from .processes import NodeProcess, ros_env
    from .recorder import Recorder

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_scene = args.seconds / len(args.scenes)
    print(f"loading scenes ({', '.join(args.scenes)}, {per_scene:.1f} s each) ...")
    scenes = [still_scene("grace_hopper", "speech", fps=15.0) if s == "still" else video_scene("bbb_30s", per_scene)
              for s in args.scenes]
    ros_args = ["-r", "__ns:=/avs", "-r", "image:=/demo/camera/image", "-r", "audio:=/demo/mic/audio"]
    if args.device:
        ros_args += ["-p", f"pipeline.device:={args.device}"]
    node_proc = NodeProcess("node", out / "node.log", config=args.config, ros_args=ros_args, env=ros_env())
    print(f"starting avs_node (log: {out / 'node.log'}) ...")
    apply_profile()  # this process publishes the camera frames: the sending side's segment decides
    keep_freed_buffers()  # and sends and receives frame-sized messages
    rclpy.init()
    node = rclpy.create_node("avs_demo")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    windows = []
    try:
        if not node_proc.wait_for("active: subscribed", args.startup_timeout):
            raise AVSError(f"avs_node did not become active within {args.startup_timeout:.0f} s; last log lines:\n"
                           + "\n".join(node_proc.log().splitlines()[-15:]))
        recorder = Recorder(node, prefix="/avs", overlay_dir=out / "overlays")
        player = Player(node, image_topic="/demo/camera/image", audio_topic="/demo/mic/audio")
        time.sleep(1.0)  # discovery
        for scene in scenes:
            start = len(player.sent_stamps)
            print(f"playing {scene.name} for {per_scene:.1f} s ...")
            player.play(scene, per_scene)
            stamps = set(player.sent_stamps[start:])
            time.sleep(2.0)  # let the last frames come back
            windows += [_window_entry(scene.name, o) for o in recorder.masks() if o.stamp in stamps]
        diag = recorder.last_diagnostics()
    finally:
        node_proc.stop()
        executor.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    lat = recorder.latency.summary()
    summary = {
        "seconds": args.seconds,
        "frames_published": len(player.sent_stamps),
        "outputs": len(windows),
        "processed_rate_hz": round(len(windows) / args.seconds, 2),
        "latency_ms": lat,
        "node_diagnostics": diag,
    }
    (out / "report.json").write_text(json.dumps({"summary": summary, "windows": windows}, indent=1))
    print(f"\n{len(player.sent_stamps)} frames published, {len(windows)} masks back "
          f"({summary['processed_rate_hz']} Hz); latency frame->mask p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms; "
          f"device {diag.get('device', '?')}, dropped {diag.get('frames_dropped_superseded', '?')} superseded frames")
    for scene in scenes:
        mine = [w for w in windows if w["scene"] == scene.name]
        labels: dict[str, int] = {}
        for w in mine:
            for label, _ in w["labels"][:1]:
                labels[label] = labels.get(label, 0) + 1
        top = ", ".join(f"{k} x{v}" for k, v in sorted(labels.items(), key=lambda kv: -kv[1])[:4]) or "none"
        non_empty = sum(w["mask_fraction"] > 0 for w in mine)
        print(f"  {scene.name}: {len(mine)} windows, {non_empty} with a non-empty mask; top labels: {top}")
    print(f"report: {out / 'report.json'}, overlays: {out / 'overlays'}")
    return 0 if windows else 1


def _window_entry(scene: str, o) -> dict:
    report = o.report or {}
    return {
        "scene": scene,
        "stamp": o.stamp,
        "latency_ms": round((o.received - o.stamp) * 1e3, 1),
        "mask_fraction": round(float(o.mask.mean()), 5),
        "labels": report.get("labels", []),
        "silent": report.get("silent"),
        "window": report.get("window"),
        "cues": report.get("cues"),
        "overlay": o.overlay_file,
    }
