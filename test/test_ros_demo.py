"""``avs demo`` end to end: assets played as camera+mic topics through avs_node in its own process."""
from __future__ import annotations

import json
import subprocess
import sys

from ros_harness import unique_domain_id

from avs_ros.processes import ros_env


def test_demo_records_masks_for_both_scenes(tmp_path, asset):
    for name in ("efficientat_mn04", "deeplabv3_voc", "grace_hopper", "speech", "bbb_30s"):
        asset(name)
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "avs_ros.cli", "demo", "--seconds", "10", "--out", str(out),
                             "--device", "cpu"], env=ros_env(unique_domain_id()), capture_output=True, text=True,
                            timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    windows = report["windows"]
    scenes = {w["scene"] for w in windows}
    assert scenes == {"grace_hopper+speech", "bbb_30s"}, scenes
    # The masks the demo recorded against the node's own counter (its /diagnostics) and the frames sent:
    # each recorded mask was processed by the node and answers a published frame.
    processed = int(report["summary"]["node_diagnostics"]["frames_processed"])
    assert 0 < len(windows) <= processed <= report["summary"]["frames_published"]
    assert report["summary"]["latency_ms"]["p50_ms"] is not None
    assert all(w["window"] and w["labels"] is not None for w in windows)
    person = [w for w in windows if w["scene"] == "grace_hopper+speech" and w["mask_fraction"] > 0.2]
    assert person and any(label == "person" for w in person for label, _ in w["labels"])
    overlays = list((out / "overlays").glob("*.png"))
    assert overlays and {w["overlay"] for w in windows if w["overlay"]} <= {p.name for p in overlays}
    assert "masks back" in result.stdout and "latency" in result.stdout
