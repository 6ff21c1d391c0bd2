"""The packet index of the keyframe-aware strategy (needs the optional PyAV): every packet of
the video stream listed by demuxing without decoding, and the runs of packets that must be
decoded for a set of frames (each from its keyframe)."""
from __future__ import annotations

from array import array
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NO_TS = -(2**63)
"""A missing timestamp in ``PacketIndex.dts``."""


def pyav_available() -> bool:
    """Whether the optional PyAV (``pip install av``, extra ``fast``) can be imported."""
    try:
        # lazy: PyAV takes 0.18 s to import; --help and OpenCV-only runs never need it
        import av  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class PacketIndex:
    """Every packet of the video stream in decode order, learned by demuxing without decoding
    (about 1/200 of the cost of decoding). Parallel numpy arrays, one entry per non-empty
    packet (26 bytes a packet: 3 MB for an hour at 30 fps, and no Python object per packet).

    ``dts`` is ``NO_TS`` where the container gives none. ``shown`` is False for packets the
    container marks as discard (decoded, never displayed: edit lists). ``readings`` are the
    times OpenCV would report for the frames, in ms (``(pts - start) * time_base * 1000``, its
    formula, so both strategies stamp alike).
    """

    pts: np.ndarray  # int64
    dts: np.ndarray  # int64
    key: np.ndarray  # bool
    shown: np.ndarray  # bool
    readings: np.ndarray  # float64
    codec: str
    width: int
    height: int

    def __post_init__(self) -> None:
        for name, dtype in (("pts", np.int64), ("dts", np.int64), ("key", np.bool_),
                            ("shown", np.bool_), ("readings", np.float64)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype))

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def keyframe_interval_s(self) -> float | None:
        """Median time between consecutive keyframes (None with fewer than two)."""
        gaps = np.diff(np.sort(self.readings[self.key & self.shown]))
        return float(np.sort(gaps)[len(gaps) // 2]) / 1000 if len(gaps) else None

    def presentation_order(self) -> np.ndarray:
        """Packet numbers of the shown frames, sorted by presentation time."""
        shown = np.flatnonzero(self.shown)
        return shown[np.argsort(self.pts[shown], kind="stable")]


def index_packets(path: Path | str) -> PacketIndex | None:
    """Demux the first video stream (no decoding) and list its packets, or None when PyAV is
    missing or the stream is not fit for keyframe-aware decoding: a packet without a
    timestamp (raw streams), repeated timestamps, or anything PyAV cannot read."""
    try:
        # lazy: PyAV takes 0.18 s to import; --help and OpenCV-only runs never need it
        import av
    except ImportError:
        return None
    pts, dts, key, shown = array("q"), array("q"), bytearray(), bytearray()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            start, base = stream.start_time, stream.time_base
            if start is None or base is None:
                return None
            for packet in container.demux(stream):
                if not packet.size:
                    continue  # the end-of-stream marker
                if packet.pts is None:
                    return None
                pts.append(packet.pts)
                dts.append(NO_TS if packet.dts is None else packet.dts)
                key.append(bool(packet.is_keyframe))
                shown.append(not packet.is_discard)
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
    except Exception:  # noqa: BLE001 - any file PyAV cannot read is sampled by OpenCV
        return None
    times = np.frombuffer(pts, np.int64) if pts else np.zeros(0, np.int64)
    if not len(times) or np.any(np.diff(np.sort(times)) == 0):
        return None
    scale = base.numerator / base.denominator  # OpenCV's r2d(time_base)
    readings = (times - start) * scale * 1000  # elementwise the same double operations
    return PacketIndex(times.copy(), np.frombuffer(dts, np.int64).copy(),
                       np.frombuffer(key, np.bool_).copy(), np.frombuffer(shown, np.bool_).copy(),
                       readings, codec, width, height)


def floats(values: np.ndarray, chunk: int = 4096) -> Generator[float, None, None]:
    """Python floats of an array, converted a chunk at a time (never a list of all of them)."""
    for at in range(0, len(values), chunk):
        yield from values[at:at + chunk].tolist()


def runs_to_decode(index: PacketIndex, packets: Iterable[int],
                   merge_adjacent: bool = True) -> list[tuple[int, int]]:
    """Packet ranges ``(first, last)`` (decode order, inclusive) to decode so that every packet
    in ``packets`` decodes exactly: each from the keyframe at or before it. A leading frame of an
    open GOP (shown before its keyframe) may refer to the previous GOP, so it starts there.
    Overlapping ranges merge; adjacent ones too unless ``merge_adjacent`` is False (separate
    runs can go to separate decoders)."""
    keys = np.flatnonzero(index.key)

    def gop_start(i: int) -> int:
        at = int(np.searchsorted(keys, i, side="right")) - 1
        return int(keys[at]) if at >= 0 else 0

    spans = []
    for i in sorted(set(packets)):
        first = gop_start(i)
        if index.pts[i] < index.pts[first] and first > 0:
            first = gop_start(first - 1)
        spans.append((first, i))
    runs: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if runs and first <= runs[-1][1] + (1 if merge_adjacent else 0):
            runs[-1] = (runs[-1][0], max(runs[-1][1], last))
        else:
            runs.append((first, last))
    return runs


class IndexMismatch(Exception):
    """The decode pass did not see the packets the index pass saw (a file that changed, or a
    demuxer that is not deterministic): the sampler goes on sequentially."""
