"""avs_core: ROS-free audio-visual sounding-object segmentation.

The one inference API is :class:`avs_core.pipeline.AVSPipeline` (a
:class:`avs_core.types.Window` in, an :class:`avs_core.types.AVSResult` out).
Submodules are imported on demand so ``import avs_core`` stays light.
"""
