"""Standard ROS parameters files: ``avs node --params-file``, a ``ros2 param dump`` fed back, and the launch mapping.

Over DDS: a node started with a ``/**: ros__parameters:`` file takes its values (node,
pipeline and cues sections alike); every parameter it then reports is written out in
``ros2 param dump`` layout and a second node started from that file reports the same
values. The launch file's argument handling (avs_ros.launch_args) is tested without
ros2launch, which PyPI does not have.
"""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from ros_harness import Client, unique_domain_id, wait_until

from rcl_interfaces.msg import ParameterType  # noqa: E402
from rcl_interfaces.srv import GetParameters, ListParameters  # noqa: E402

from avs_ros.launch_args import avs_node_settings, audio_topics  # noqa: E402
from avs_ros.processes import ros_env  # noqa: E402

_VALUE_FIELDS = {ParameterType.PARAMETER_BOOL: "bool_value", ParameterType.PARAMETER_INTEGER: "integer_value",
                 ParameterType.PARAMETER_DOUBLE: "double_value", ParameterType.PARAMETER_STRING: "string_value",
                 ParameterType.PARAMETER_BOOL_ARRAY: "bool_array_value",
                 ParameterType.PARAMETER_INTEGER_ARRAY: "integer_array_value",
                 ParameterType.PARAMETER_DOUBLE_ARRAY: "double_array_value",
                 ParameterType.PARAMETER_STRING_ARRAY: "string_array_value"}


def start_node(tmp_path, name: str, domain: int, params_file):
    log_path = tmp_path / f"{name}.log"
    cmd = [sys.executable, "-m", "avs_ros.cli", "node", "--params-file", str(params_file),
           "--ros-args", "-r", f"__ns:=/{name}", "-p", "pipeline.device:=cpu"]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=ros_env(domain))
    ok = wait_until(lambda: "active: subscribed" in log_path.read_text() or proc.poll() is not None, 240, period=0.5)
    assert ok and proc.poll() is None, log_path.read_text()[-3000:]
    return proc, log_path


def stop(proc) -> int:
    proc.send_signal(subprocess.signal.SIGINT)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def all_parameters(client, fqn: str) -> dict:
    names = client.call(client.node.create_client(ListParameters, f"{fqn}/list_parameters"),
                        ListParameters.Request()).result.names
    values = client.call(client.node.create_client(GetParameters, f"{fqn}/get_parameters"),
                         GetParameters.Request(names=names)).values
    out = {}
    for name, value in zip(names, values):
        field = _VALUE_FIELDS[value.type]
        v = getattr(value, field)
        out[name] = list(v) if field.endswith("array_value") else v
    return out


def dump_layout(fqn: str, params: dict) -> dict:
    """The YAML ``ros2 param dump`` writes: names split at dots into nested mappings."""
    tree: dict = {}
    for name, value in sorted(params.items()):
        node = tree
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return {fqn: {"ros__parameters": tree}}


def test_params_file_and_param_dump_round_trip(tmp_path, asset):
    for name in ("efficientat_mn04", "deeplabv3_voc"):
        asset(name)
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
        "qos": "reliable", "audio": {"wait_s": 0.3}, "pipeline": {"mask_threshold": 0.4},
        "cues": {"max_cues": 3, "tagger": {"top_k": 7}}, "use_sim_time": True}}}))
    domain = unique_domain_id()
    client = Client(domain)
    try:
        proc, log = start_node(tmp_path, "a", domain, first)
        try:
            a = all_parameters(client, "/a/avs_node")
        finally:
            assert stop(proc) == 0, log.read_text()[-2000:]
        assert (a["qos"], a["audio.wait_s"], a["pipeline.mask_threshold"]) == ("reliable", 0.3, 0.4)
        assert (a["cues.max_cues"], a["cues.tagger.top_k"], a["use_sim_time"]) == (3, 7, True)
        assert a["audio.buffer_s"] == 5.0 and a["cues.backend"] == "auto"  # untouched keys keep config/avs.yaml's
        dump = tmp_path / "dump.yaml"
        dump.write_text(yaml.safe_dump(dump_layout("/b/avs_node", a)))
        proc, log = start_node(tmp_path, "b", domain, dump)
        try:
            b = all_parameters(client, "/b/avs_node")
        finally:
            assert stop(proc) == 0, log.read_text()[-2000:]
    finally:
        client.close()
    assert b == a


def test_launch_arguments_map_onto_the_node():
    settings = avs_node_settings({"image": "/cam/image", "audio": "", "audio_transport": "float32", "use_sim_time": "true",
                                  "qos": "", "image_transport": "compressed", "assets_dir": "/data/assets",
                                  "log_level": "WARN", "params_file": "/tmp/dump.yaml", "device": "cpu"}, "/cfg/avs.yaml")
    assert settings["arguments"] == ["--config", "/cfg/avs.yaml"]
    # The params file comes before the explicit arguments, which win; empty arguments leave the config's value.
    assert settings["parameters"] == ["/tmp/dump.yaml", {"use_sim_time": True, "image_transport": "compressed",
                                                         "audio.transport": "float32",
                                                         "pipeline.assets_dir": "/data/assets", "pipeline.device": "cpu"}]
    assert settings["ros_arguments"] == ["--log-level", "warn"]
    assert dict(settings["remappings"]) == {"image": "/cam/image", "audio": "/audio/audio", "audio_info": "/audio/audio_info",
                                            "camera_info": "/cam/camera_info"}
    with pytest.raises(ValueError, match="use_sim_time"):
        avs_node_settings({"use_sim_time": "yes please"}, "c.yaml")
    with pytest.raises(ValueError, match="log_level"):
        avs_node_settings({"log_level": "loud"}, "c.yaml")


def test_default_audio_topic_is_where_the_driver_publishes():
    # ros-drivers audio_capture_node in namespace `audio`: AudioDataStamped on /audio/audio_stamped.
    assert audio_topics("", "audio_common_stamped") == ("/audio/audio_stamped", "/audio/audio_info")
    assert audio_topics("", "audio_common") == ("/audio/audio", "/audio/audio_info")
    assert audio_topics("/robot/mic/audio_stamped", "") == ("/robot/mic/audio_stamped", "/robot/mic/audio_info")
