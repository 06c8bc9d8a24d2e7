"""avs_node under a live camera + microphone load, side by side with the pipeline alone, in one run.

1. The pipeline alone (same config as the node: config/avs.yaml, CPU) on a 640x480
   photo + speech, as much as the node hands over (the window and the tagger's context): frames/s.
2. avs_node started with its defaults (``avs node``, own process, the shipped
   config/fastdds.xml) under a publisher in another process: 640x480 rgb8 frames of a
   real photo at ``--rate`` Hz plus 16 kHz speech in 0.1 s chunks in real time, once
   with a reliable publisher and once with a best-effort one (both with the shipped
   Fast DDS profile, as the README asks of camera drivers).

Prints per run: node masks/s and ratio to the pipeline rate, frame→mask latency
p50/p95/p99 (ROS time at arrival minus the frame stamp, measured here), frames lost
before the node, audio coverage of the processed windows (mean and 5th percentile),
CPU % and RSS of the node process, and the load average (other processes compete for
the CPU on shared machines).

    python bench/bench_node.py [--seconds 30] [--rate 30] [--publishers reliable best_effort]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = (640, 480)


def load_scene():
    import cv2

    from avs_ros.playback import Scene, still_scene

    base = still_scene("grace_hopper", "speech")
    frame = cv2.resize(base.frames[0], SIZE, interpolation=cv2.INTER_AREA)
    return Scene("bench", [frame], 30.0, base.audio, base.sample_rate)


def pipeline_fps(seconds: float) -> tuple[float, float, dict[str, float]]:
    """Sustained frames/s and median ms of the pipeline alone on the bench frame + speech windows."""
    from avs_core.pipeline import AVSPipeline
    from avs_core.types import Window
    from avs_ros.params import load_config

    cfg = dict(load_config()["pipeline"], device="cpu")
    pipe = AVSPipeline.from_config(cfg)
    scene = load_scene()
    sr = scene.sample_rate
    n = int(pipe.audio_span_s * sr)  # the window plus the tagger's context, as the node hands it over
    pipe.warmup()
    for k in range(3):  # the node is warm too when measured (its first frames are not counted)
        pipe(Window(scene.frames[0], scene.audio_at(k * sr // 10, n), sr, 0.0, 1.0))
    times, stages, start, k = [], [], time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        result = pipe(Window(scene.frames[0], scene.audio_at(k * sr // 10, n), sr, 0.0, 1.0))
        times.append(time.perf_counter() - t0)
        stages.append(result.timings_ms)
        k += 1
    return len(times) / (time.perf_counter() - start), 1e3 * float(np.median(times)), stage_medians(stages)


def stage_medians(timings: list[dict]) -> dict[str, float]:
    """Median ms per pipeline stage (audio_tagger, vision_deeplab, total, ...) over the frames that ran it."""
    names = sorted({k for t in timings for k in t})
    return {k: round(float(np.median([t[k] for t in timings if k in t])), 1) for k in names}


def publish(args) -> int:
    """Child process: play the scene on /bench/image + /bench/audio (rate, QoS from the arguments)."""
    import rclpy

    from avs_ros.allocator import keep_freed_buffers
    from avs_ros.dds import apply_profile
    from avs_ros.playback import Player

    apply_profile()
    keep_freed_buffers()  # as avs demo's player does
    rclpy.init()
    node = rclpy.create_node("bench_camera")
    player = Player(node, image_topic="/bench/image", audio_topic="/bench/audio", reliable=args.publish == "reliable")
    deadline = time.monotonic() + 60
    while player.image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the node's audio subscription too
    player.play(load_scene(), args.seconds, camera_hz=args.rate)
    Path(args.stamps_out).write_text(json.dumps(player.sent_stamps))
    node.destroy_node()
    rclpy.shutdown()
    return 0


# Frames worth reporting from a py-spy profile: the streaming stages and the biggest model stages.
PROFILE_KEYS = ("StreamProcessor.process", "StreamProcessor._wait_for_audio", "AVSPipeline.__call__", "AvsNode._on_output",
                "Publisher.publish", "numpy_to_image_msg", "_decode", "AudioTagger.tag", "DeepLabV3VOC.segment",
                "YoloxCOCO", "Executor.wait_for_ready_callbacks", "AvsNode._on_image", "AvsNode._on_audio",
                "Executor._take_subscription", "CueRefresher.refresh_once", "LatestSlot.get")


def summarize_profile(path: Path) -> str:
    """Inclusive share of PROFILE_KEYS frames per thread from a ``py-spy record --format raw --threads`` file."""
    if not path.exists():
        return f"  (no profile: {path} missing; py-spy needs ptrace permission)"
    totals: dict[str, int] = {}
    shares: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        totals[thread] = totals.get(thread, 0) + int(count)
        names = {f.split(" (")[0] for f in frames[1:]}
        for key in PROFILE_KEYS:
            if any(name.startswith(key) for name in names):
                shares.setdefault(thread, {}).setdefault(key, 0)
                shares[thread][key] += int(count)
    lines = []
    for thread, total in sorted(totals.items(), key=lambda kv: -kv[1]):
        parts = sorted(shares.get(thread, {}).items(), key=lambda kv: -kv[1])
        lines.append(f"  {thread}: " + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in parts))
    return "\n".join(lines)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_node(publisher: str, args, domain: int, out_dir: Path) -> dict:
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from avs_ros.processes import NodeProcess, ros_env
    from avs_ros.recorder import Recorder

    env = ros_env(domain)
    node_proc = NodeProcess("node", out_dir / f"node_{publisher}.log", env=env,
                            ros_args=["-r", "__ns:=/bench", "-p", "pipeline.device:=cpu",
                                      *[arg for param in args.param for arg in ("-p", param)]])
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    client = rclpy.create_node("bench_recorder", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client)
    threading.Thread(target=executor.spin, daemon=True).start()
    stamps_file = out_dir / f"stamps_{publisher}.json"
    try:
        if not node_proc.wait_for("active: subscribed", 300):
            raise RuntimeError("node did not start:\n" + node_proc.log()[-3000:])
        recorder = Recorder(client, prefix="/bench", heatmap=not args.mask_only)
        pub = subprocess.Popen([sys.executable, __file__, "--publish", publisher, "--rate", str(args.rate),
                                "--seconds", str(args.seconds), "--stamps-out", str(stamps_file)], env=env, cwd=ROOT)
        while not recorder.masks() and pub.poll() is None:
            time.sleep(0.1)  # measurement starts at the first mask: discovery and the first second are not steady state
        spy = None
        if args.profile:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(node_proc.proc.pid),
                                    "--duration", str(int(args.seconds)), "--rate", "50", "--format", "raw", "--threads",
                                    "--idle", "--nonblocking", "--output", str(out_dir / f"profile_{publisher}.txt")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0, t0, rss = cpu_seconds(node_proc.proc.pid), time.monotonic(), []
        if pub.poll() is not None:
            raise RuntimeError(f"the camera publisher exited with {pub.returncode} before the first mask")
        pub_cpu0 = pub_cpu = cpu_seconds(pub.pid)
        own_cpu0 = sum(os.times()[:2])
        while pub.poll() is None:
            rss.append(node_proc.rss_mb())
            try:
                pub_cpu = cpu_seconds(pub.pid)
            except OSError:
                pass  # it has just exited: the last reading stands
            time.sleep(1.0)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(node_proc.proc.pid) - cpu0
        # The camera publisher and this process (recorder) share the 2 cores with the node.
        other_cpu = pub_cpu - pub_cpu0 + sum(os.times()[:2]) - own_cpu0
        if spy is not None:
            spy.wait(60)
        time.sleep(2.5)  # last outputs + a diagnostics message
        load = os.getloadavg()
        diag = recorder.last_diagnostics()
    finally:
        node_proc.stop()
        executor.shutdown()
        client.destroy_node()
        rclpy.shutdown(context=context)
    sent = json.loads(stamps_file.read_text()) if stamps_file.exists() else []
    masks = [m for m in recorder.masks() if m.stamp in set(sent)]
    first = masks[0].stamp if masks else 0.0
    steady = [m for m in masks if m.stamp > first]  # after the first mask (see above)
    lat = np.array([(m.received - m.stamp) * 1e3 for m in steady]) if steady else np.zeros(1)
    coverage = [m.report["window"]["audio_coverage"] for m in steady if m.report]
    stages = stage_medians([m.report["timings_ms"] for m in steady if m.report])
    return {
        "publisher": publisher,
        "frames_sent": len(sent),
        "masks": len(steady),
        "masks_per_s": len(steady) / elapsed,
        "latency_ms": [float(np.percentile(lat, q)) for q in (50, 95, 99)],
        "frames_lost_before_node": diag.get("frames_lost_before_node", "?"),
        "frames_accepted": diag.get("frames_accepted", "?"),
        # The pipeline's own time inside the node: 1000 / this is what the worker could do if never idle.
        "inference_p50_ms": diag.get("inference_p50_ms", "?"),
        "stages_p50_ms": stages,
        "audio_coverage_median": float(np.median(coverage)) if coverage else None,
        "audio_coverage_mean": float(np.mean(coverage)) if coverage else None,
        "audio_coverage_p5": float(np.percentile(coverage, 5)) if coverage else None,
        "cpu_percent": 100.0 * cpu / elapsed,
        "publisher_recorder_cpu_percent": 100.0 * other_cpu / elapsed,
        "rss_mb": [round(min(rss), 1), round(max(rss), 1)] if rss else None,
        # After warm-up (the first 10 % of the run): first sample, last sample, growth in %.
        "rss_warm_mb": ([round(rss[len(rss) // 10], 1), round(rss[-1], 1),
                         round(100 * (rss[-1] / rss[len(rss) // 10] - 1), 2)] if len(rss) >= 10 else None),
        "load_avg": [round(x, 2) for x in load],
        # Latency and pipeline stages of every mask, in order (--json): which frames make the tail.
        "per_mask": [[round((m.received - m.stamp) * 1e3, 1), m.report.get("timings_ms") if m.report else None] for m in steady],
        "qos_log": [line.split("]: ", 1)[-1] for line in node_proc.log().splitlines() if "qos" in line.lower()][:3],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of publishing per node run (default 30)")
    ap.add_argument("--rate", type=float, default=30.0, help="camera frames per second (default 30)")
    ap.add_argument("--publishers", nargs="+", choices=("reliable", "best_effort"), default=["reliable", "best_effort"])
    ap.add_argument("--pipeline-seconds", type=float, default=20.0, help="seconds of the pipeline-alone run")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--logs", default=None, help="keep node logs in this folder (default: a temporary one)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                    help="node parameter instead of its default (repeatable), e.g. audio.min_coverage:=1.0")
    ap.add_argument("--mask-only", action="store_true",
                    help="subscribe to mask and cues only (default: the heatmap too, 4 bytes/pixel to serialize)")
    ap.add_argument("--skip-pipeline", action="store_true", help="node runs only (e.g. a parameter sweep)")
    ap.add_argument("--profile", action="store_true", help="sample the node with py-spy and print where its time goes")
    ap.add_argument("--publish", choices=("reliable", "best_effort"), help=argparse.SUPPRESS)
    ap.add_argument("--stamps-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        return publish(args)

    from avs_ros.allocator import keep_freed_buffers

    # This process records the node's outputs over DDS; the pipeline-alone runs share the setting (as in the node).
    keep_freed_buffers()
    nan = (float("nan"), float("nan"), {})
    fps_before, ms, alone_stages = pipeline_fps(args.pipeline_seconds) if not args.skip_pipeline else nan
    print(f"pipeline alone: {fps_before:.2f} frames/s ({ms:.0f} ms median), load avg {os.getloadavg()[0]:.2f}", flush=True)
    domain = 150 + os.getpid() % 50
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_node_") as tmp:
        logs = Path(args.logs or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for i, publisher in enumerate(args.publishers):
            runs.append(run_node(publisher, args, domain + i, logs))
            print(json.dumps(runs[-1]), flush=True)
        profiles = {p: summarize_profile(logs / f"profile_{p}.txt") for p in args.publishers} if args.profile else {}
    # Again after the node runs: on a shared machine the load drifts; the ratio uses the mean.
    fps_after, _, _ = pipeline_fps(args.pipeline_seconds) if not args.skip_pipeline else nan
    fps = (fps_before + fps_after) / 2
    print(f"\n{args.rate:g} Hz 640x480 rgb8 + 16 kHz speech in 0.1 s chunks, {args.seconds:g} s per run, "
          f"node with {' '.join(args.param) or 'defaults'}, shipped Fast DDS profile on both sides")
    header = (f"{'publisher':12s} {'masks/s':>8s} {'ratio':>6s} {'p50':>6s} {'p95':>6s} {'p99':>6s} "
              f"{'lost':>6s} {'cov':>5s} {'cov5':>5s} {'CPU%':>6s} {'RSS MB':>12s} {'load1':>6s} {'inf p50':>8s} {'busy':>5s} {'pub+rec CPU%':>12s}")
    print(f"pipeline alone: {fps:.2f} frames/s (before {fps_before:.2f}, after {fps_after:.2f})")
    print(header)
    for r in runs:
        p50, p95, p99 = r["latency_ms"]
        cov = f"{r['audio_coverage_mean']:.2f} {r['audio_coverage_p5']:5.2f}" if r["audio_coverage_mean"] is not None else "-     -"
        rss = f"{r['rss_mb'][0]:.0f}-{r['rss_mb'][1]:.0f}" if r["rss_mb"] else "-"
        # Share of the time the worker spent in the model (masks/s x in-node inference time): robust to a
        # loaded machine, where the pipeline-alone rate of another moment is a poor reference.
        busy = (f"{r['masks_per_s'] * float(r['inference_p50_ms']) / 1e3:.2f}"
                if r["inference_p50_ms"] not in ("?", "None") else "-")
        print(f"{r['publisher']:12s} {r['masks_per_s']:8.2f} {r['masks_per_s'] / fps:6.2f} {p50:6.0f} {p95:6.0f} {p99:6.0f} "
              f"{r['frames_lost_before_node']:>6s} {cov:>11s} {r['cpu_percent']:6.0f} {rss:>12s} {r['load_avg'][0]:6.2f} {r['inference_p50_ms']:>8s} {busy:>5s} {r['publisher_recorder_cpu_percent']:12.0f}")
    # The same stages in the node and alone: a stage slower in the node competes for the CPU there.
    print("stage p50 ms: " + "; ".join(f"{name} " + ", ".join(f"{k} {v:.0f}" for k, v in st.items())
                                        for name, st in [("alone", alone_stages)] + [(r["publisher"], r["stages_p50_ms"]) for r in runs]))
    for r in runs:
        if r["rss_warm_mb"]:
            start, end, growth = r["rss_warm_mb"]
            print(f"{r['publisher']}: node RSS after warm-up {start:.0f} -> {end:.0f} MB ({growth:+.1f} %)")
    if args.json:
        Path(args.json).write_text(json.dumps({"pipeline_fps": [fps_before, fps_after], "alone_stages_p50_ms": alone_stages,
                                               "runs": runs}, indent=1))
    for publisher, summary in profiles.items():
        print(f"\nwhere the node's time goes ({publisher}; % of each thread's samples, inclusive):\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
