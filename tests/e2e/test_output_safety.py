"""Writers of the output folder as a hostile user meets them: exports side by side, leftovers of
killed exports, an ``--out`` that would take other folders with it, full, read-only and
size-limited disks, a run killed in its last step, and ``dataset/`` or ``sheets/`` linked to
another disk."""
from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.state.markers import FINAL_STEP
from helpers.reviewkit import DemoRun, copy_run
from helpers.support import REPO, cli, read_manifest

sys.path.insert(0, str(REPO / "scripts"))
from faults import _trigger  # noqa: E402  (the kill points of scripts/faults.py)


@pytest.fixture
def demo(review_demo: DemoRun, tmp_path: Path) -> DemoRun:
    """A copy of the demo run with its config as ``run.yaml`` beside its output folder."""
    run = copy_run(review_demo, tmp_path / "out")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run.raw))
    return run


def dead_pid() -> int:
    """The id of a process that does not exist."""
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def exported_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_exports_side_by_side_never_mix_and_a_holder_is_named(demo):
    cwd = demo.root.parent
    assert cli("export", "run.yaml", "--format", "coco", cwd=cwd).returncode == 0
    folder = demo.root / "exports" / "coco"
    whole = exported_files(folder)
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", "export", "run.yaml", "--format", "coco"],
                              cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}) for _ in range(3)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(code in (0, 2) and "Traceback" not in err for code, err in results), results
    assert all("in use by another command (export --format coco" in err for code, err in results if code)
    assert exported_files(folder) == whole, "the export holds every file, once"
    assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".")], "no scratch left"

    (demo.root / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                    "command": "sheet", "started": "now"}))
    held = cli("export", "run.yaml", "--format", "yolo", cwd=cwd)
    assert held.returncode == 2
    assert f"in use by another command (sheet, pid {os.getpid()}" in one_line_error(held)
    assert not (demo.root / "exports" / "yolo").exists()


def test_an_export_removes_what_killed_exports_left(demo):
    exports = demo.root / "exports"
    old, tmp, cache = (exports / f".coco.old.{dead_pid()}", exports / f".coco.{dead_pid()}.tmp",
                       exports / f".hf.{dead_pid()}.tmp.cache.x1y2")
    for leftover in (old, tmp, cache):
        (leftover / "train").mkdir(parents=True)
        (leftover / "train" / "a.jpg").write_bytes(b"x" * 1000)
    mine = exports / ".coco.notes"
    mine.write_text("a file of yours")
    assert cli("export", "run.yaml", "--format", "coco", cwd=demo.root.parent).returncode == 0
    assert sorted(p.name for p in exports.iterdir()) == [".coco.notes", cache.name, "coco"]
    pytest.importorskip("datasets", reason="the hf export needs datasets")
    assert cli("export", "run.yaml", "--format", "hf", cwd=demo.root.parent).returncode == 0
    assert sorted(p.name for p in exports.iterdir()) == [".coco.notes", "coco", "hf"]


def test_out_that_would_take_other_folders_is_refused(demo):
    cwd = demo.root.parent
    (cwd / "notes.txt").write_text("keep me")
    before = sorted(str(p) for p in cwd.rglob("*"))
    for out in (".", "out", str(cwd.parent), "/"):
        result = cli("export", "run.yaml", "--format", "coco", "--out", out, cwd=cwd)
        assert result.returncode == 2, (out, result.stderr)
        assert "must never be" in one_line_error(result)
    empty = cwd / "empty"
    empty.mkdir()
    result = cli("export", "../run.yaml", "--format", "yolo", "--out", ".", cwd=empty)
    assert result.returncode == 2 and "is the current folder" in one_line_error(result)
    empty.rmdir()
    assert sorted(str(p) for p in cwd.rglob("*")) == before, "nothing of yours was touched"


def test_an_empty_folder_of_yours_is_filled_not_replaced(demo):
    mine = demo.root.parent / "mine"
    mine.mkdir()
    inode = mine.stat().st_ino
    for fmt in ("yolo", "coco"):
        result = cli("export", "run.yaml", "--format", fmt, "--out", "mine", cwd=demo.root.parent)
        assert result.returncode == 0, result.stderr
    assert list(mine.glob("*/_annotations.coco.json")) and not (mine / "data.yaml").exists()
    assert mine.stat().st_ino == inode, "the folder you made is still the same folder"


def test_hf_without_datasets_says_what_to_install(demo):
    hide = ("import sys; sys.modules['datasets'] = None; sys.argv[0] = 'pipeline'; "
            "from pipeline.cli.main import main; main()")
    result = subprocess.run([sys.executable, "-c", hide, "export", "run.yaml", "--format", "hf"],
                            cwd=demo.root.parent, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    line = one_line_error(result)
    assert 'pip install -e ".[hf]"' in line and "pip install datasets" in line
    assert not (demo.root / "exports").exists()


def mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full or read-only disk is simulated with a tmpfs mount, which needs root "
                    "(chmod does not stop root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def disk(tmp_path):
    """A 64 kB tmpfs (a frame is ~30 kB: an export fills it); unmounted after the test."""
    folder = tmp_path / "disk"
    mount_tmpfs(folder, "size=64k")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_export_to_a_full_or_read_only_disk_is_one_line(demo, disk):
    cwd = demo.root.parent
    full = cli("export", "run.yaml", "--format", "coco", "--out", str(disk / "coco"), cwd=cwd)
    assert full.returncode == 1 and "the disk is full (No space left on device)" in one_line_error(full)
    assert list(disk.iterdir()) == [], "nothing half-written stays"
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    ro = cli("export", "run.yaml", "--format", "coco", "--out", str(disk / "coco"), cwd=cwd)
    assert ro.returncode == 1 and f"{disk}" in one_line_error(ro) and "read-only" in ro.stderr


def test_sheet_and_export_of_a_run_on_a_read_only_disk(demo, disk):
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    run = copy_run(demo, disk / "out")
    config = disk.parent / "ro.yaml"
    config.write_text(yaml.safe_dump(run.raw))
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    sheet = cli("sheet", str(config), cwd=disk.parent)
    line = one_line_error(sheet)
    assert sheet.returncode == 1 and "run.lock: the file system is read-only" in line, line
    into = cli("export", str(config), "--format", "yolo", "--out", "yolo", cwd=disk.parent)
    assert into.returncode == 0, "a read-only run is exported elsewhere: " + into.stderr
    assert (disk.parent / "yolo" / "data.yaml").is_file()


def test_a_file_size_limit_stops_the_run_in_one_line(demo):
    def limit() -> None:  # what `ulimit -f 4` does: 4 kB, smaller than any crop
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    result = subprocess.run([sys.executable, "-m", "pipeline", "run", "run.yaml", "-q", "--force", "crop"],
                            cwd=demo.root.parent, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=limit)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "larger than this process may write (ulimit -f)" in result.stderr
    assert not (demo.root / "run.lock").exists()


def test_status_sees_a_last_step_that_did_not_finish(demo):
    cwd = demo.root.parent
    kept = [r["crop_id"] for r in read_manifest(demo.root) if r["status"] == "kept"]
    (demo.root / "rejects.txt").write_text(kept[0] + "\n")  # the last step has work to do
    # the kill point of scripts/faults.py (dataset/ being rebuilt), or the last step's record,
    # which lasts the whole step (the dataset's scratch only a few milliseconds)
    in_dataset = _trigger("global steps", demo.root)
    marker = demo.root / "state" / FINAL_STEP

    def trigger() -> bool:
        return in_dataset() or marker.exists()

    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "run.yaml", "-q"], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not trigger():
        time.sleep(0.002)
    assert proc.poll() is None, "the run ended before its last step could be killed"
    proc.kill()
    proc.wait()
    status = cli("status", "run.yaml", cwd=cwd)
    assert status.returncode == 1
    assert ("the last step (dataset, manifest, sheets) did not finish: run the same command again"
            in status.stdout)
    assert cli("run", "run.yaml", "-q", cwd=cwd).returncode == 0
    again = cli("status", "run.yaml", cwd=cwd)
    assert again.returncode == 0 and "last step" not in again.stdout


def test_linked_dataset_and_sheets_are_written_through(demo, tmp_path):
    other = tmp_path / "other-disk"
    other.mkdir()
    (other / "sibling.txt").write_text("next to the dataset")
    for name in ("dataset", "sheets"):
        shutil.move(str(demo.root / name), str(other / name))
        (demo.root / name).symlink_to(other / name)
        (other / name / "NOTES.md").write_text(f"my notes on {name}")
    kept = [r["crop_id"] for r in read_manifest(demo.root) if r["status"] == "kept"]
    (demo.root / "rejects.txt").write_text(kept[0] + "\n")
    result = cli("run", "run.yaml", "-q", cwd=demo.root.parent)
    assert result.returncode == 0, result.stderr
    for name in ("dataset", "sheets"):
        assert (demo.root / name).is_symlink(), f"{name}/ is still your link"
        assert (other / name / "NOTES.md").read_text() == f"my notes on {name}"
    assert (other / "sibling.txt").is_file()
    in_dataset = sorted(str(p.relative_to(other)) for p in (other / "dataset").rglob("*.jpg"))
    listed = sorted(r["dataset_file"] for r in read_manifest(demo.root) if r["status"] == "kept")
    assert in_dataset == listed and not [p for p in in_dataset if kept[0] in p]
    leftovers = [p.name for folder in (demo.root, other) for p in folder.iterdir() if ".old." in p.name]
    assert leftovers == []
