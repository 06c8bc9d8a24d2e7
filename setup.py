"""ament_python package avs_ros (with the ROS-free library avs_core), also pip-installable."""
from glob import glob

from setuptools import find_packages, setup

package_name = "avs_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["avs_core", "avs_core.*", "avs_ros", "avs_ros.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/config/models", glob("config/models/*.yaml")),
        ("share/" + package_name + "/config/models/tiny", glob("config/models/tiny/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=["setuptools"],
    zip_safe=True,
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
