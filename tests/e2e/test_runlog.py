"""``run -v`` and ``run --log FILE``: a line per stage and source that a long run can be read from."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers.support import cli

REPO = Path(__file__).resolve().parents[2]
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


pytestmark = pytest.mark.slow  # whole runs in subprocesses


def test_log_file_and_verbose_have_a_line_per_unit(tmp_path):
    (tmp_path / "videos").mkdir()
    shutil.copy(REPO / "demo" / "videos" / "hopper_pan.mp4", tmp_path / "videos" / "hopper.mp4")
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video at all" * 100)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(
        {"name": "logged", "sources": [{"path": "videos"}], "sample": {"every": 1.0}}))

    first = cli("run", "run.yaml", "-q", "--log", "logs/run.log", cwd=tmp_path)
    assert first.returncode == 1, first.stderr  # the broken file fails, the other is done
    assert "INFO" not in first.stderr, "without -v the console shows no unit lines"
    text = (tmp_path / "logs" / "run.log").read_text()
    ok = re.search(r"file-hopper-[0-9a-f]{8}", text).group(0)
    # sample, detect and crop ran together: sample's seconds are split into each step's busy time
    busy = (r" \(with detect and crop; busy: decode \d+\.\d\d s, jpeg [\d.]+ s, detect [\d.]+ s, "
            r"crop [\d.]+ s\)")
    during = r" \(done during sample\)"
    for stage, counts in (("download", ""), ("sample", r" frames=5 dropped_blurry=0" + busy),
                          ("detect", r" detections=\d+" + during), ("crop", r" crops=\d+" + during)):
        assert re.search(rf"^{STAMP} INFO {stage} {ok} ran \d+\.\d\d s{counts}$", text, re.M), stage
    detect_busy = float(re.search(r"busy: .* detect ([\d.]+) s", text).group(1))
    assert detect_busy > 0, "the detector's time shows where it went, not under sample alone"
    failed = r"(?:download|sample) file-broken-[0-9a-f]{8} failed \[\w[\w-]*\] .+"
    assert re.search(rf"^{STAMP} WARNING {failed}$", text, re.M)
    assert re.search(rf"^{STAMP} INFO run logged finished in [\d.]+ s: 1 failed, \d+ crops kept", text, re.M)

    again = cli("run", "run.yaml", "-q", "-v", "--log", "logs/run.log", cwd=tmp_path)
    assert again.returncode == 1
    for stage in ("download", "sample", "detect", "crop"):
        assert f"INFO: {stage} {ok} skipped" in again.stderr, stage
    assert "failed [" in again.stderr and "recorded earlier" in again.stderr
    appended = (tmp_path / "logs" / "run.log").read_text()
    assert appended.startswith(text), "a resumed run appends to the log"
    assert appended.count("INFO run logged finished") == 2
    assert re.search(rf"^{STAMP} INFO crop {ok} skipped crops=\d+$", appended, re.M)

    redone = cli("run", "run.yaml", "-q", "-v", "--force", "sample", cwd=tmp_path)
    assert re.search(rf"^INFO: sample {ok} ran \d+\.\d\d s frames=5 dropped_blurry=0{busy}$",
                     redone.stderr, re.M), redone.stderr
    assert re.search(rf"^INFO: detect {ok} ran \d+\.\d\d s detections=\d+{during}$", redone.stderr, re.M)
