"""avs_ros: ROS 2 nodes around avs_core (no model logic here)."""
