"""Turn videos into a labelled image dataset of face or person crops (see README.md).

FFmpeg's own messages about broken input ("moov atom not found", damaged H.264 headers) would
otherwise go straight to the terminal from inside OpenCV; every failure they stand for is
reported once, classified, in the run's summary instead. Set OPENCV_FFMPEG_LOGLEVEL yourself
(e.g. 24 for warnings) to see them.
"""
import os as _os

_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
