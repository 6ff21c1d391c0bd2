"""Probe a video and pick the frames to keep from it: the sampling library of the sample stage.

- ``probe.py``: open a video, learn its size, rate and length (``probe``, ``VideoError``);
- ``plan.py``: what to keep (``SamplePlan``, ``Range``) and what is kept (``SampledFrame``);
- ``selection.py``: which frames, from their times: targets, scenes, the clock (pure);
- ``packets.py``: the packet index the keyframe-aware strategy plans on (PyAV);
- ``source.py``: the one interface of the two decode strategies, ``FrameSource``;
  ``opencv.py`` (``sequential``) and ``pyav.py`` (``seek``) implement it;
- ``sampler.py``: ``iter_samples`` picks the strategy and filters blurry frames.

Two strategies give the same frames with the same timestamps and indexes (tests check it):
``sequential`` grabs every frame with OpenCV (needed for ``scene`` mode and for streams
without timestamps); ``seek`` (needs the optional PyAV) lists the packets without decoding and
decodes only what the kept frames need. ``strategy="auto"`` takes ``seek`` when PyAV can index
the file and at most half of the frames are kept, else ``sequential``. With ``exact=False`` a
target may take the nearest keyframe within half a step instead of the exact frame (its true
timestamp is reported), so sparse sampling decodes keyframes only.

Typical use (the sample stage)::

    info = probe(path)
    samples = iter_samples(path, SamplePlan(mode="every", every_s=1.0), info)
    for frame in samples:
        write(frame.t_ms, frame.image)
    report(samples.dropped_blurry, samples.estimated_timestamps)
"""
from .packets import PacketIndex, index_packets, pyav_available
from .plan import Range, SampledFrame, SamplePlan
from .probe import VideoError, VideoInfo, probe
from .sampler import Sampler, iter_samples
from .selection import sharpness

__all__ = ["PacketIndex", "Range", "SampledFrame", "SamplePlan", "Sampler", "VideoError",
           "VideoInfo", "index_packets", "iter_samples", "probe", "pyav_available", "sharpness"]
