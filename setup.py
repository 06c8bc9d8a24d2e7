"""ament_python package avs_ros (with the ROS-free library avs_core), also pip-installable.

The default configuration (config/*.yaml, fastdds.xml) is package data of ``avs_config`` (the config/
folder mapped by package_dir), found with importlib.resources from a checkout, a wheel or
a colcon install; colcon installs also get share/avs_ros/{config,launch} for ros2 launch.
"""
from glob import glob

from setuptools import find_packages, setup

package_name = "avs_ros"
config_patterns = ["*.yaml", "*.xml", "models/*.yaml", "models/tiny/*.yaml"]

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["avs_core", "avs_core.*", "avs_ros", "avs_ros.*"]) + ["avs_config"],
    package_dir={"avs_config": "config"},
    package_data={"avs_core": ["asset_manifest.json"], "avs_config": config_patterns},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + package_name + "/config/models", glob("config/models/*.yaml")),
        ("share/" + package_name + "/config/models/tiny", glob("config/models/tiny/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=["setuptools"],
    zip_safe=False,  # package data is read as files (importlib.resources -> real paths)
    maintainer="avs maintainers",
    maintainer_email="avs@example.org",
    description="Audio-visual segmentation: which object in the camera image makes the sound the robot hears",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "avs = avs_ros.cli:main",
            "avs_node = avs_ros.avs_node:main",
            "mic_node = avs_ros.mic_node:main",
        ],
    },
)
