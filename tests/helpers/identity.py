"""The identity tests' labelled face clips (in the test videos' ``faces/``) and who a crop of
them shows."""
from __future__ import annotations

import numpy as np

CLIPS = ("zhling_1280x720.mp4", "two_people_320x192.mp4", "man_640x320_bframes.mp4",
         "carphone_176x144.mp4", "ytf_aaron_guiel5.avi")


def person_of(row: dict, aaron_boxes: np.ndarray) -> str:
    """Ground truth: the clip's one person; two_people's left or right one; in the Aaron clip
    the labelled face (IoU > 0.3 with its box), else 'other' (an unlabelled player, crowd)."""
    sid = row["source_id"]
    x, y, w, h = (float(row[k]) for k in ("box_x", "box_y", "box_w", "box_h"))
    if "two_people" in sid:
        return "two_people_left" if x + w / 2 < 160 else "two_people_right"
    if "aaron" in sid:
        cx, cy, lw, lh = aaron_boxes[int(row["frame_index"])]
        ix = max(0.0, min(cx + lw / 2, x + w) - max(cx - lw / 2, x))
        iy = max(0.0, min(cy + lh / 2, y + h) - max(cy - lh / 2, y))
        iou = ix * iy / (lw * lh + w * h - ix * iy)
        return "aaron" if iou > 0.3 else "aaron_clip_other"
    return sid.split("-")[1].split("_")[0]
