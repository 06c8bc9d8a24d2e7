"""Launch avs_node (and optionally mic_node) from one avs YAML.

    ros2 launch avs_ros avs.launch.py image:=/camera/image_raw use_mic:=true
    ros2 launch avs_ros avs.launch.py config:=/path/avs.yaml namespace:=/robot1/avs device:=cuda

Without ros2launch, ``avs node --config config/avs.yaml --ros-args -r image:=...`` starts the same node.
"""
from __future__ import annotations

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _default_config() -> str:
    from ament_index_python.packages import get_package_share_directory

    return os.path.join(get_package_share_directory("avs_ros"), "config", "avs.yaml")


def _dds_env() -> dict[str, str]:
    """config/fastdds.xml (large images over shared memory) unless the user set a Fast DDS profile."""
    variables = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
    if any(os.environ.get(v) for v in variables):
        return {}
    profile = os.path.join(os.path.dirname(_default_config()), "fastdds.xml")
    return {v: profile for v in variables} if os.path.isfile(profile) else {}


def _nodes(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    config = arg("config") or _default_config()
    overrides = {"pipeline.device": arg("device")} if arg("device") else {}
    audio_info = arg("audio").rsplit("/", 1)[0] + "/audio_info" if "/" in arg("audio") else "audio_info"
    return [
        Node(
            package="avs_ros", executable="avs_node", name="avs_node", namespace=arg("namespace"),
            arguments=["--config", config], parameters=[overrides] if overrides else [],
            remappings=[("image", arg("image")), ("audio", arg("audio")), ("audio_info", audio_info)],
            additional_env=_dds_env(), output="screen", emulate_tty=True,
        ),
        Node(
            package="avs_ros", executable="mic_node", name="mic_node", namespace=arg("namespace"),
            arguments=["--config", config], remappings=[("audio", arg("audio")), ("audio_info", audio_info)],
            output="screen", emulate_tty=True, condition=IfCondition(arg("use_mic")),
        ),
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="",
                              description="avs YAML with pipeline/node/mic/cues sections (default: the installed config/avs.yaml)"),
        DeclareLaunchArgument("namespace", default_value="avs",
                              description="namespace of the nodes and their outputs (mask, heatmap, overlay, cues)"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image; CompressedImage with node.image_transport: compressed)"),
        DeclareLaunchArgument("audio", default_value="/audio/audio",
                              description="audio topic (audio_common_msgs/AudioDataStamped, or std_msgs/Float32MultiArray); "
                                          "AudioInfo is expected beside it on <dir>/audio_info"),
        DeclareLaunchArgument("use_mic", default_value="false",
                              description="also start mic_node (sounddevice) publishing on the audio topic"),
        DeclareLaunchArgument("device", default_value="",
                              description="inference device override: auto, cpu, cuda, cuda:N (default: the YAML's pipeline.device)"),
        OpaqueFunction(function=_nodes),
    ])
