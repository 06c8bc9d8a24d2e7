"""Launch avs_node (and optionally mic_node) from one avs YAML.

    ros2 launch avs_ros avs.launch.py image:=/camera/image_raw use_mic:=true
    ros2 launch avs_ros avs.launch.py config:=/path/avs.yaml namespace:=/robot1/avs device:=cuda
    ros2 launch avs_ros avs.launch.py use_sim_time:=true params_file:=dump.yaml   # with `ros2 bag play --clock`

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
    if os.environ.get("ROS_DISTRO") != "humble":
        variables = variables[:1]  # Fast DDS 3 (Jazzy+) warns that the Fast DDS 2 name is deprecated
    return {v: profile for v in variables} if os.path.isfile(profile) else {}


# Launch arguments avs_ros.launch_args maps onto avs_node.
ARGUMENTS = ("image", "audio", "audio_transport", "use_sim_time", "qos", "image_transport", "assets_dir", "log_level",
             "params_file", "device")


def _nodes(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    from avs_ros.launch_args import avs_node_settings

    config = arg("config") or _default_config()
    settings = avs_node_settings({name: arg(name) for name in ARGUMENTS}, config)
    audio, audio_info = settings["remappings"][1][1], settings["remappings"][2][1]
    return [
        Node(
            package="avs_ros", executable="avs_node", name="avs_node", namespace=arg("namespace"),
            additional_env=_dds_env(), output="screen", emulate_tty=True, **settings,
        ),
        Node(
            package="avs_ros", executable="mic_node", name="mic_node", namespace=arg("namespace"),
            arguments=["--config", config], remappings=[("audio", audio), ("audio_info", audio_info)],
            parameters=[{"use_sim_time": settings["parameters"][-1]["use_sim_time"],
                         **({"transport": arg("audio_transport")} if arg("audio_transport") else {})}],
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
        DeclareLaunchArgument("audio", default_value="",
                              description="audio topic (default: where the driver of audio_transport publishes, e.g. "
                                          "/audio/audio_stamped for ros-drivers audio_capture_node); AudioInfo is expected "
                                          "beside it on <dir>/audio_info"),
        DeclareLaunchArgument("audio_transport", default_value="",
                              description="audio messages: audio_common_stamped, audio_common, audio_stamped, int16, float32 "
                                          "(default: the config's audio.transport, auto)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (rosbag replay, simulation)"),
        DeclareLaunchArgument("qos", default_value="", description="input QoS: auto, sensor_data, reliable (default: the config's)"),
        DeclareLaunchArgument("image_transport", default_value="",
                              description="raw (sensor_msgs/Image) or compressed (CompressedImage) (default: the config's)"),
        DeclareLaunchArgument("assets_dir", default_value="", description="folder of the model assets (default: the search path)"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug, info, warn, error or fatal"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="ROS parameters file (/**: ros__parameters: ..., e.g. `ros2 param dump` output) "
                                          "applied over the config"),
        DeclareLaunchArgument("use_mic", default_value="false",
                              description="also start mic_node (sounddevice) publishing on the audio topic"),
        DeclareLaunchArgument("device", default_value="",
                              description="inference device override: auto, cpu, cuda, cuda:N (default: the YAML's pipeline.device)"),
        OpaqueFunction(function=_nodes),
    ])
