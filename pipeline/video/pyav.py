"""The ``seek`` strategy (keyframe-aware, needs the optional PyAV): a demux pass that decodes
nothing lists every packet (``packets.index_packets``), the plan is applied to that list, and
then only what the kept frames need is decoded: from the keyframe before each kept frame up to
it, with non-reference frames skipped (``skip_frame``: no other frame depends on them), and the
rest of the video is skipped, with a real seek across long gaps. Dense sampling (1 s in a 2 s
GOP) then decodes about half of the frames, sparse sampling (5 s, 30 s) little more than the
keyframes. Runs start at keyframes, so they are spread over one decoder thread per core.
Timestamps are computed with OpenCV's formula from the packets' own, frame indexes are ranks in
presentation order: both equal what the sequential strategy reports (tests check it).
"""
from __future__ import annotations

import bisect
import math
import os
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np

from .opencv import OpenCVSource
from .packets import NO_TS, IndexMismatch, PacketIndex, floats, index_packets, runs_to_decode
from .selection import Clock, Span, Targets, last_end_ms, slot_of
from .source import Candidate, Job

DENSE_FRACTION = 0.5
"""``auto`` decodes sequentially when more than this fraction of the frames is kept."""
SEEK_GAP_PACKETS = 250
"""The keyframe-aware strategy seeks over a gap of more than this many packets, and demuxes
(reads without decoding) through shorter ones."""
PARALLEL_RUNS = True
"""Decode independent runs on one single-threaded decoder per core (see ``PyAVSource.frames``)."""
QUEUE_FRAMES = 3
"""Decoded frames each parallel decoder may hold ready for the consumer."""
NONREF_CODECS = frozenset({"h264", "hevc", "mpeg4"})
"""Decoders proven to honour ``skip_frame`` packet by packet and to give the kept frames bit for
bit as a full decode does (``tests/test_video.py`` checks every codec and stream kind against a
sequential decode, with and without frame threads). H.264 and HEVC read it in every slice
header, MPEG-4 part 2 for every B-frame: asked for every 7th frame of the test clips (B-frames,
GOP 25), they decode 68%, 49% and 43% of the frames. VP9, AV1 (libdav1d) and MJPEG decoded
every frame whatever it said (measured), and any other decoder is not known to be exact: for them
it stays ``DEFAULT``."""


def seekable_index(job: Job) -> PacketIndex | None:
    """The packet index when the plan and the file allow the ``seek`` strategy, else None (the
    plan asks for ``sequential``, scene mode or ``seek_start``; display rotation; no PyAV; a
    stream PyAV cannot index or whose frames OpenCV would size differently)."""
    plan = job.plan
    if (plan.strategy == "sequential" or plan.mode == "scene" or plan.seek_start
            or job.info.rotation):
        return None
    index = index_packets(job.path)
    if index is None or (index.width, index.height) != (job.info.width, job.info.height):
        return None
    return index


@dataclass(frozen=True)
class Pick:
    """A frame to keep: its packet (decode order), time, index and range slot."""

    packet: int
    t_ms: int
    frame_index: int
    slot: int


def picks(job: Job, index: PacketIndex) -> list[Pick]:
    """Apply the plan to the index: the very frames a sequential pass keeps, with the same
    clock, selector and frame counting."""
    spans = job.spans
    order = index.presentation_order()
    readings = index.readings[order]
    selector = job.selector(lambda: floats(readings))
    assert isinstance(selector, Targets)
    stop_ms = last_end_ms(spans)
    clock = Clock(job.frame_ms)
    kept: list[Pick] = []
    stamps = np.zeros(len(order), np.int64)
    stamped = 0  # frames before the end of the ranges
    for rank, reading in enumerate(floats(readings)):
        t_ms = clock.stamp(reading)
        if stop_ms is not None and t_ms >= stop_ms:
            break
        stamps[rank] = t_ms
        stamped = rank + 1
        slot = slot_of(t_ms, spans)
        if slot is not None and selector.keep(t_ms, slot, None):
            kept.append(Pick(int(order[rank]), t_ms, rank, slot))
    job.counts.estimated_timestamps = clock.estimated
    if not job.plan.exact:
        kept = near_keyframes(index, order[:stamped], stamps[:stamped], kept, selector, spans)
    return kept


def near_keyframes(index: PacketIndex, order: np.ndarray, stamps: np.ndarray,
                   picks: list[Pick], selector: Targets, spans: list[Span]) -> list[Pick]:
    """``exact=False``: move each pick to the nearest keyframe within half a step (in the
    same range, keeping the picks in strictly increasing time)."""
    keys = np.flatnonzero(index.key[order]).tolist()  # ranks of the keyframes
    key_times = stamps[keys].tolist()
    out: list[Pick] = []
    for n, pick in enumerate(picks):
        tolerance = selector.step_ms(pick.slot) / 2
        low = out[-1].t_ms if out else -math.inf
        high = picks[n + 1].t_ms if n + 1 < len(picks) else math.inf
        best: Pick | None = None
        at = bisect.bisect_left(key_times, pick.t_ms - tolerance)
        while at < len(key_times) and key_times[at] <= pick.t_ms + tolerance:
            t = key_times[at]
            if (low < t < high and spans[pick.slot].contains(t)
                    and (best is None or abs(t - pick.t_ms) < abs(best.t_ms - pick.t_ms))):
                rank = keys[at]
                best = Pick(int(order[rank]), t, rank, pick.slot)
            at += 1
        out.append(best or pick)
    return out


class PyAVSource:
    """Decode the runs of packets the picks need and yield the picked frames."""

    def __init__(self, job: Job, index: PacketIndex, picks: list[Pick]) -> None:
        self.job = job
        self.index = index
        self.picks = picks
        self.strategy = "seek"

    @classmethod
    def planned(cls, job: Job, index: PacketIndex) -> PyAVSource | None:
        """The source for ``index``, or None when ``auto`` finds the plan too dense for it
        (sequential decoding is then cheaper)."""
        kept = picks(job, index)
        if job.plan.strategy == "auto" and len(kept) > DENSE_FRACTION * int(index.shown.sum()):
            return None
        return cls(job, index, kept)

    def frames(self) -> Generator[Candidate, None, None]:
        """The picked frames, skipping non-reference packets that are not picked. If the file
        does not demux as indexed, go on sequentially after the last yielded frame.

        Runs start at keyframes, so they decode independently: with several cores, one
        single-threaded decoder per core takes every n-th run (GOP-level parallelism scales
        better than a decoder's own frame threads, which stall at every run's end), and the
        frames come back in order through small bounded queues."""
        index, counts, threads = self.index, self.job.counts, self.job.plan.threads
        by_pts = {int(index.pts[p.packet]): p for p in self.picks}
        decoders = threads or os.cpu_count() or 1
        runs = runs_to_decode(index, [p.packet for p in self.picks],
                              merge_adjacent=decoders == 1)
        if decoders > 1 and len(runs) > 1 and PARALLEL_RUNS:
            decoded = self._decode_parallel(runs, frozenset(by_pts), decoders)
        else:
            decoded = self._decode_serial(runs, frozenset(by_pts), threads)
        last_ms = -1
        mismatch = False
        try:
            for item in decoded:
                if item[0] == "end":
                    counts.grabbed += item[1]
                    counts.decoded += item[2]
                    continue
                _, pts, image = item
                pick = by_pts.pop(pts)
                counts.retrieved += 1
                last_ms = pick.t_ms
                yield Candidate(pick.t_ms, pick.frame_index, image, pick.slot)
        except IndexMismatch:
            mismatch = True
        finally:
            decoded.close()
        if mismatch:
            self.strategy = "seek+sequential"
            yield from OpenCVSource(self.job, after_ms=last_ms).frames()
        else:
            counts.unreadable += len(by_pts)  # picked frames the decoder never gave

    def _decode_serial(self, runs: list[tuple[int, int]], wanted: frozenset[int],
                       threads: int) -> Iterator[tuple]:
        """``("frame", pts, BGR image)`` for each wanted frame and ``("end", packets fed, frames
        the decoder gave)`` after each run, with one decoder (``threads``: its threads, 0 for
        FFmpeg's default)."""
        # lazy: PyAV takes 0.18 s to import; --help and OpenCV-only runs never need it
        import av

        with av.open(str(self.job.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if threads:
                stream.codec_context.thread_count = threads
            skip_nonref = stream.codec_context.name in NONREF_CODECS
            for frame, fed, decoded in self._decode_runs(container, stream, runs, wanted,
                                                         skip_nonref):
                if frame is None:
                    yield "end", fed, decoded
                else:
                    yield "frame", frame.pts, frame.to_ndarray(format="bgr24")

    def _decode_parallel(self, runs: list[tuple[int, int]], wanted: frozenset[int],
                         decoders: int) -> Iterator[tuple]:
        """``_decode_serial`` spread over ``decoders`` threads, run ``r`` on thread ``r % n``;
        each thread hands over at most ``QUEUE_FRAMES`` frames ahead of the consumer."""
        decoders = min(decoders, len(runs))
        stop = threading.Event()
        queues: list[queue.Queue] = [queue.Queue(QUEUE_FRAMES) for _ in range(decoders)]

        def put(out: queue.Queue, item: tuple) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work(mine: list[tuple[int, int]], out: queue.Queue) -> None:
            try:
                for item in self._decode_serial(mine, wanted, 1):
                    if not put(out, item):
                        break
            except BaseException as error:  # noqa: BLE001 - handed to the consumer
                put(out, ("error", error))

        threads = [threading.Thread(target=work, args=(runs[n::decoders], queues[n]),
                                    name=f"decode-{n}", daemon=True) for n in range(decoders)]
        for thread in threads:
            thread.start()
        try:
            for run in range(len(runs)):
                source = queues[run % decoders]
                while True:
                    item = source.get()
                    if item[0] == "error":
                        raise item[1]
                    yield item
                    if item[0] == "end":
                        break
        finally:
            stop.set()
            for source in queues:  # unblock producers, drop what they made
                while True:
                    try:
                        source.get_nowait()
                    except queue.Empty:
                        break
            for thread in threads:
                thread.join()

    def _decode_runs(self, container, stream, runs: list[tuple[int, int]],
                     wanted: frozenset[int], skip_nonref: bool) -> Iterator[tuple]:
        """``(frame, 0, 0)`` for the wanted frames, in presentation order within each run, and
        ``(None, packets fed, frames decoded)`` at the end of each run."""
        index = self.index
        context = stream.codec_context
        demuxed = self._packets(container, stream)
        position = 0  # index of the next packet ``demuxed`` gives
        for first, last in runs:
            if first - position > SEEK_GAP_PACKETS and index.dts[first] != NO_TS:
                demuxed, position = self._seek(container, stream, first)
            while position < first:  # demux through a short gap
                self._expect(next(demuxed, None), index, position)
                position += 1
            decoded = 0
            for i in range(first, last + 1):
                packet = next(demuxed, None)
                self._expect(packet, index, i)
                position += 1
                if skip_nonref:
                    context.skip_frame = "DEFAULT" if packet.pts in wanted else "NONREF"
                for frame in _decode(context, packet):
                    decoded += 1
                    if frame.pts in wanted:
                        yield frame, 0, 0
            for frame in _decode(context, None):  # drain: the run's last frames come out
                decoded += 1
                if frame.pts in wanted:
                    yield frame, 0, 0
            context.flush_buffers()
            yield None, last + 1 - first, decoded

    @staticmethod
    def _packets(container, stream) -> Iterator:
        return (p for p in container.demux(stream) if p.size)

    @staticmethod
    def _expect(packet, index: PacketIndex, i: int) -> None:
        if packet is None or i >= len(index) or packet.pts != index.pts[i]:
            raise IndexMismatch(i)

    def _seek(self, container, stream, first: int) -> tuple[Iterator, int]:
        """Seek to the keyframe packet ``first`` (by its decode time, backward: the demuxer
        lands on it or on an earlier keyframe) and demux up to it."""
        index = self.index
        container.seek(int(index.dts[first]), stream=stream, backward=True, any_frame=False)
        demuxed = self._packets(container, stream)
        for packet in demuxed:
            if packet.pts == index.pts[first]:
                return _prepend(packet, demuxed), first
            if packet.dts is not None and packet.dts > index.dts[first]:
                break
        raise IndexMismatch(first)


def _decode(context, packet) -> list:
    """Frames out of the decoder for ``packet`` (None: drain). A packet the decoder rejects
    (corrupt data) gives none, as ``grab()`` skips it in a sequential pass."""
    # lazy: PyAV takes 0.18 s to import; --help and OpenCV-only runs never need it
    import av

    try:
        return context.decode(packet)
    except av.FFmpegError:
        return []


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest
