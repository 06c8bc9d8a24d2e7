"""ROS side of microphone-array direction fusion: CameraInfo and TF in, ``doa`` (+ RViz arrow) out.

The direction itself is computed by ``avs_core`` (``pipeline.doa``); this module only turns ROS
inputs into the core's ``CameraModel`` / ``ArrayPose`` and the result into messages:

- ``doa`` (geometry_msgs/Vector3Stamped): unit vector towards the sound in ``doa.frame_id`` (the
  array frame), stamped with the audio window's end (= the frame's stamp);
- ``doa/marker`` (visualization_msgs/Marker, ``doa.marker``): an arrow for RViz.

The array -> camera transform comes from TF (``doa.frame_id`` -> the image's frame_id) when
tf2_ros is available (apt ROS 2; PyPI has no tf2_ros), else from ``pipeline.doa.array_to_camera``.
"""
from __future__ import annotations

from typing import Any, Callable

from geometry_msgs.msg import Point, Vector3Stamped
from visualization_msgs.msg import Marker

from avs_core.errors import AVSError
from avs_core.geometry import ArrayPose, CameraModel

try:
    import tf2_ros
except ImportError:  # apt ROS 2 has it; PyPI does not: the static pipeline.doa.array_to_camera is used
    tf2_ros = None


class DirectionIO:
    """Builds each window's camera model and array pose, and publishes the direction it got back."""

    def __init__(self, node, pubs: dict[str, Any], frame_id: str, marker: bool, warn):
        self.node, self.frame_id, self.warn = node, frame_id, warn
        self._camera_key: tuple | None = None
        self._camera: CameraModel | None = None
        self.last: dict[str, Any] = {}
        pubs["doa"] = node.create_lifecycle_publisher(Vector3Stamped, "doa", 10)
        self.marker = bool(marker)
        if self.marker:
            pubs["doa/marker"] = node.create_lifecycle_publisher(Marker, "doa/marker", 10)
        self._pubs = pubs
        self._tf = None
        if tf2_ros is not None:
            self._tf = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf, node)
        self.pose_source = "tf" if self._tf is not None else "pipeline.doa.array_to_camera"

    def camera(self, info) -> CameraModel | None:
        """The camera model of the latest CameraInfo (cached), or None with a throttled warning."""
        if info is None:
            return None
        key = (tuple(info.k), tuple(info.d), int(info.width), int(info.height))
        if key != self._camera_key:
            self._camera_key = key
            try:
                self._camera = CameraModel.from_intrinsics(info.k, info.width, info.height, info.d)
            except AVSError as exc:
                self._camera = None
                self.warn("camera_info", f"camera_info unusable for direction fusion: {exc}")
        elif self._camera is None:
            self.warn("camera_info", "camera_info unusable for direction fusion (see earlier warning)")
        return self._camera

    def pose(self, camera_frame: str, stamp) -> ArrayPose | None:
        """array -> camera from TF at ``stamp``; None (static parameter) without TF or transform."""
        if self._tf is None:
            return None
        try:
            tf = self._tf.lookup_transform(camera_frame, self.frame_id, stamp).transform
        except Exception as exc:  # noqa: BLE001 - tf2 raises several lookup/extrapolation types
            self.warn("doa_transform", f"no TF transform {self.frame_id} -> {camera_frame} ({type(exc).__name__}): "
                      "using pipeline.doa.array_to_camera")
            return None
        q, t = tf.rotation, tf.translation
        return ArrayPose.from_quaternion([q.x, q.y, q.z, q.w], [t.x, t.y, t.z])

    def wrap(self, pipeline, camera_info: Callable[[], Any]) -> Callable:
        """``pipeline`` called with each window's camera model and array pose (the stream processor's pipeline)."""
        from rclpy.time import Time

        def run(window):
            info = camera_info()
            window.camera = self.camera(info)
            if info is not None and info.header.frame_id:
                # The window ends at the frame's stamp: the transform at that instant.
                window.array_pose = self.pose(info.header.frame_id, Time(nanoseconds=int(round(window.t_end * 1e9))))
            return pipeline(window)

        return run

    def publish(self, header, result) -> None:
        """``doa`` (+ marker) for one processed frame; remembers the last state for diagnostics."""
        doa = result.doa
        if doa is None:
            return
        self.last = doa.as_dict()
        est = doa.estimate
        if est is None:
            return
        msg = Vector3Stamped()
        msg.header.stamp, msg.header.frame_id = header.stamp, self.frame_id
        msg.vector.x, msg.vector.y, msg.vector.z = (float(v) for v in est.direction)
        self._pubs["doa"].publish(msg)
        if self.marker and self._pubs["doa/marker"].get_subscription_count() > 0:
            self._pubs["doa/marker"].publish(self._arrow(msg, doa.used, est.confidence))

    @staticmethod
    def _arrow(vec: Vector3Stamped, used: bool, confidence: float) -> Marker:
        m = Marker()
        m.header = vec.header
        m.ns, m.id, m.type, m.action = "avs_doa", 0, Marker.ARROW, Marker.ADD
        length = 0.3 + 0.7 * float(confidence)  # metres: a longer arrow for a surer direction
        m.points = [Point(), Point(x=vec.vector.x * length, y=vec.vector.y * length, z=vec.vector.z * length)]
        m.scale.x, m.scale.y, m.scale.z = 0.02, 0.05, 0.08  # shaft diameter, head diameter, head length
        m.color.a = 1.0
        m.color.r, m.color.g, m.color.b = (0.1, 0.9, 0.2) if used else (0.6, 0.6, 0.6)
        m.lifetime.sec = 2
        m.pose.orientation.w = 1.0
        return m

    def diagnostics(self) -> dict[str, str]:
        last = self.last
        return {
            "doa.pose_source": self.pose_source,
            "doa.used": str(last.get("used", "n/a")),
            "doa.reason": str(last.get("reason", "")),
            "doa.confidence": str(last.get("confidence", "n/a")),
            "doa.azimuth_deg": str(last.get("azimuth_deg", "n/a")),
        }
