"""Sample, detect and crop of one source run together, as a bounded pipeline of threads.

A unit whose sample stage runs also runs detect and crop (their inputs are redone). One after
another, each stage reads back the JPEGs the one before wrote: every kept frame is decoded from
the video, JPEG-encoded, then JPEG-decoded twice, and no two stages ever use the two cores at
once. Here each frame flows through three threads, each handing over to the next through a queue
of at most ``overlap.DEPTH`` frames (so memory holds a few frames, never a video's worth):

- the calling thread decodes the video (the sampler: PyAV's or OpenCV's own decoder threads);
- a helper thread JPEG-encodes the frame, writes it into the sample stage's scratch folder and
  decodes those very bytes (``cv2.imdecode`` of the bytes written is what ``cv2.imread`` of the
  file gives: the later stages see what they would read from disk);
- a second helper runs the detector on that frame and cuts its crops from it (no JPEG is read
  back), writing them into the crop stage's scratch folder.

OpenCV, PyAV and onnxruntime release the GIL while they work, so threads overlap as processes
would, without copying frames between processes.

Each stage's outputs are the ones its own ``run`` writes, byte for byte (tested): the per-frame
work is the stages' own (``sample.frames_of``, ``detect.detect_one``, ``crop.crop_frame``),
crops are cut with the detections as the crop stage reads them back from
``detections/<sid>.jsonl`` (rounded), and the track ids, known only once every frame is
detected, are filled into the crop rows at the end (a frame some of whose weak boxes continued
no track, ``detect.track.low_score``, is cut again from its JPEG then, as the crop stage alone
would cut it). The stages finish in order, one ``next()`` each: the frames folder is renamed
into place (the caller then writes the sample marker), then ``detections/<sid>.jsonl`` is
written, then the crops folder is renamed. A crash at any moment leaves at most the finished
stages, which a rerun continues from disk with the stages' own ``run``.

Not used (``applicable`` is False), so the stages run one after another, when ``detect.every``
is above 1: the boxes of a frame between two detected ones are interpolated from the next
detected frame, which is decoded later, so its crops cannot be cut as it passes. Nor when two
downloaded parts (segments downloaded one by one) overlap in time (``disjoint``), nor when the
detector cannot load: the detect stage then fails on its own, as it would alone. An error in any
step once the three run together fails the unit at its sample stage (none of the three is
finished then), and the next run starts again from sampling.
"""
from __future__ import annotations

import math
import shutil
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.layout import OutputLayout
from ..config.schema import Crop
from ..core.detections import Detections
from ..io.files import encode_image, fresh_tmp_dir, write_bytes
from ..io.overlap import prefetch
from ..core.records import Video
from ..algo.track import track_hits
from . import crop, detect, sample
from .blur import for_config
from .base import Context, Produced, Results
from .download import DownloadResult, VideoPart

def applicable(ctx: Context, inputs: Results) -> bool:
    """Whether the overlapped path gives exactly what the stages give one after another."""
    if ctx.config.detect.every != 1 or not disjoint(ctx.video, inputs[DownloadResult].parts):
        return False
    try:
        detect.detector_for(ctx.config)
    except Exception:  # reported by the detect stage itself
        return False
    return True


def disjoint(video: Video, parts: tuple[VideoPart, ...]) -> bool:
    """Whether no two downloaded parts hold the same moment. Two that do could give two frames
    one file name: on disk the later one wins, and the stages run alone read that one for both."""
    if len(parts) <= 1:
        return True
    segments = [p.segment for p in parts]
    if min(segments) < 0:
        return False
    spans = sorted((video.segments[i].start, video.segments[i].end or math.inf) for i in segments)
    return all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))


@dataclass
class Flow:
    """Frames decoded and not yet through detect and crop: the pipeline's memory, in frames;
    and the seconds each step kept its thread busy (they overlap, so they add up to more than
    the wall time)."""

    held: int = 0
    peak: int = 0
    busy: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("decode", "jpeg", "detect", "crop"), 0.0))

    def timed(self, step: str, started: float) -> None:
        self.busy[step] += time.perf_counter() - started


def run(ctx: Context, inputs: Results) -> Generator[Produced[Any], None, None]:
    """Yield the sample, detect and crop stages' ``Produced``, each once its outputs are in place.

    Closing the generator early removes the scratch folders of the stages not yielded yet.
    """
    video, config, root = ctx.video, ctx.config, ctx.root
    detector = detect.detector_for(config)
    layout = OutputLayout(root)
    frames_final, crops_final = layout.frames_dir(video.sid), layout.crops_dir(video.sid)
    frames_tmp, crops_tmp = fresh_tmp_dir(frames_final), fresh_tmp_dir(crops_final)
    jpeg, crop_params = sample.jpeg_params(config), crop.encode_params(config.crop)
    tally, flow = sample.Tally(), Flow()
    bystanders = for_config(config)

    def decoded() -> Iterator[tuple[dict[str, Any], np.ndarray]]:
        frames = sample.frames_of(video, config, root, inputs[DownloadResult].parts, tally,
                                  ctx.progress, desc="sample+detect+crop")
        while True:
            started = time.perf_counter()
            item = next(frames, None)
            flow.timed("decode", started)
            if item is None:
                return
            flow.held += 1
            flow.peak = max(flow.peak, flow.held)
            yield item

    def to_jpeg(item: tuple[dict[str, Any], np.ndarray]) -> np.ndarray:
        started = time.perf_counter()
        row, image = item
        data = encode_image(".jpg", image, jpeg)
        write_bytes(frames_tmp / row["file"], data)
        as_read = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if as_read is None:  # the JPEG just encoded: only a broken OpenCV build gets here
            raise OSError(f"cannot decode the JPEG of frame {row['file']}")
        flow.timed("jpeg", started)
        return as_read

    def detect_and_crop(item: tuple[dict[str, Any], np.ndarray]
                        ) -> tuple[Detections, list[dict[str, Any]]]:
        row, image = item
        started = time.perf_counter()
        found = detect.detect_one(detector, config.detect, image)
        flow.timed("detect", started)
        started = time.perf_counter()
        as_read = Detections.from_json(found.to_json())  # what the crop stage reads back
        rows = crop.crop_frame(video.sid, config.crop, row, as_read, image, crops_tmp, crop_params,
                               bystanders)
        flow.timed("crop", started)
        return found, rows

    try:
        # the raw frame is let go once encoded: only (row, JPEG-decoded frame) goes on
        jpegs = ((row, image) for (row, _), image in prefetch(to_jpeg, decoded()))
        results: list[tuple[dict[str, Any], Detections, list[dict[str, Any]]]] = []
        for (row, _), (found, crop_rows) in prefetch(detect_and_crop, jpegs):
            flow.held -= 1
            results.append((row, found, crop_rows))
        results.sort(key=lambda r: r[0]["t_ms"])  # parts are decoded one after another
        rows = [r[0] for r in results]

        outputs, result = sample.finish(video, frames_tmp, frames_final, rows, tally)
        yield outputs, replace(result, overlapped={
            "peak_frames_in_flight": flow.peak,
            "busy_s": {k: round(v, 2) for k, v in flow.busy.items()}})

        det_rows = detect.tracked_rows(rows, [r[1] for r in results], config.detect, frames_final)
        yield detect.write(video, config, root, det_rows, len(results))

        crops = [with_track_ids(of_frame, det_row, config.crop) if len(det_row["boxes"]) == len(found)
                 else recut(of_frame, det_row, frames_final, crops_tmp, config.crop, crop_params, video.sid)
                 for det_row, (_, found, of_frame) in zip(det_rows, results)]
        yield crop.finish(video, config.crop, crops_tmp, crops_final,
                          [row for of_frame in crops for row in of_frame], track_hits(det_rows))
    finally:  # closed early or failed: no scratch stays (a renamed folder is not there any more)
        for tmp in (frames_tmp, crops_tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def recut(rows: list[dict[str, Any]], det_row: dict[str, Any], frames: Path, tmp: Path, c: Crop,
          params: list[int], sid: str) -> list[dict[str, Any]]:
    """A frame's crops cut again from its JPEG, when tracking left out some of its boxes (weak
    ones that continued no track, ``detect.track.low_score``): the crop stage alone would cut
    the boxes that are left, numbered as they are. The frame read back is the one detected (the
    same JPEG bytes, decoded the same way)."""
    for row in rows:
        (tmp / Path(row["file"]).name).unlink(missing_ok=True)
    image = cv2.imread(str(frames / det_row["file"]))
    if image is None:
        raise OSError(f"cannot read frame {frames / det_row['file']}")
    return crop.crop_frame(sid, c, det_row, Detections.from_json(det_row), image, tmp, params)


def with_track_ids(rows: list[dict[str, Any]], det_row: dict[str, Any], c: Crop
                   ) -> list[dict[str, Any]]:
    """A frame's crop rows with the track ids of their detections (joined after the last frame)."""
    keep = crop.select(Detections.from_json(det_row), c)
    for k, row in enumerate(rows):
        row["track_id"] = int(det_row["track_id"][keep[k]])
    return rows
