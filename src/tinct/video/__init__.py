"""Video colorization without flicker.

* :class:`VideoColorizer` colorizes a stream of frames or a clip file into a clip file
  (``tinct colorize clip.mp4``), with temporal consistency (:class:`TemporalConfig`) or
  per frame (``temporal=None``, the baseline);
* :class:`TemporalFilter`: colour carried along DIS optical flow at the network's working
  resolution, occlusion masks, scene cuts (:mod:`tinct.video.temporal`);
* :mod:`tinct.video.io`: reading and writing clips with PyAV (audio kept);
* :mod:`tinct.video.clips`: test clips with real motion made from photos, with colour truth;
* optical flow, warping and trust masks are in :mod:`tinct.metrics.flow`, which the temporal
  metrics share.

The metrics are in :mod:`tinct.metrics.temporal`, the evaluation in :mod:`tinct.evaluate.video`;
``docs/video.md`` describes it all.
"""

from tinct.video.pipeline import ClipResult, ColorizedFrame, VideoColorizer
from tinct.video.temporal import FrameNote, TemporalConfig, TemporalFilter

__all__ = ["ClipResult", "ColorizedFrame", "FrameNote", "TemporalConfig", "TemporalFilter", "VideoColorizer"]
