"""A run touches only what it made, and repairs damage to it: through the CLI, in a temp folder.

Each case is one a hostile (or just unlucky) user hit: user files under ``output``, an output
of ``/``, ``~``, a file, another config's folder; a crop, a frame or a crops.jsonl deleted or
cut; garbled state files; a folder source and a file inside it with other labels; rejects files
saved in another encoding.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.support import cli, read_manifest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"
VIDEOS = ("hopper_pan.mp4", "astronaut_zoom.mp4")


pytestmark = pytest.mark.slow  # whole runs in subprocesses


def copy_videos(folder: Path) -> Path:
    if not folder.exists():
        folder.mkdir(parents=True)
        for v in VIDEOS:
            shutil.copy(DEMO / v, folder / v)
    return folder


def write_config(work: Path, file: str = "c.yaml", videos: Path | None = None, **overrides) -> Path:
    """Two short demo videos (in ``videos``, else ``<work>/videos``), default relative output
    ``out`` (the user's working folder)."""
    videos = copy_videos(videos or work / "videos")
    cfg = {"name": "t", "output": "out",
           "sources": [{"path": str(videos / v), "label": v.split("_")[0]} for v in VIDEOS],
           "sample": {"every": 1.0}}
    cfg.update(overrides)
    (work / file).write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return work / file


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """One folder of videos for the module: source ids hash a file's absolute path, so runs
    copied from ``finished`` keep their ids."""
    return copy_videos(tmp_path_factory.mktemp("videos") / "v")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, videos):
    """A finished run, copied by each test that damages it (the run itself is done once)."""
    work = tmp_path_factory.mktemp("done")
    write_config(work, videos=videos)
    done = cli("run", "c.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stderr
    return work


@pytest.fixture
def work(finished, tmp_path):
    copy = tmp_path / "w"
    shutil.copytree(finished, copy, copy_function=shutil.copy2)
    # the copy's dataset/ files are copies, not links: relink them as a run leaves them
    for row in read_manifest(copy / "out"):
        (copy / "out" / row["dataset_file"]).unlink()
        os.link(copy / "out" / row["file"], copy / "out" / row["dataset_file"])
    return copy


# ----------------------------------------------------------------------------- ownership

USER_FILES = ("dataset/mydata.csv", "sheets/budget.ods", "sub/.draft.tmp/ch1.txt", ".vim.tmp")


def _user_files(root: Path) -> None:
    for rel in USER_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"user data {rel}\n")


def test_a_folder_of_user_files_is_refused_and_left_as_it_was(tmp_path):
    write_config(tmp_path)
    _user_files(tmp_path / "out")
    before = tree(tmp_path / "out")
    line = one_line_error(cli("run", "c.yaml", "-q", cwd=tmp_path))
    assert "already holds files that this tool did not write" in line and "new or empty" in line
    assert tree(tmp_path / "out") == before
    assert one_line_error(cli("validate", "c.yaml", cwd=tmp_path)) == line


def test_user_files_put_into_our_output_survive_reruns_and_swaps(work):
    root = work / "out"
    _user_files(root)
    (root / ".git").mkdir()
    (root / ".git" / ".packed.tmp").write_text("git's")
    (root / "crops" / "notes.txt").write_text("mine")
    # a killed swap of dataset/: the old copy holds one of our files and one of the user's
    row = read_manifest(root)[0]
    old = root / ".dataset.old.999999"
    (old / Path(row["dataset_file"]).relative_to("dataset")).parent.mkdir(parents=True)
    os.link(root / row["file"], old / Path(row["dataset_file"]).relative_to("dataset"))
    (old / "train" / "keep.txt").write_text("user's, left in the old copy by a crash")
    (root / "rejects.txt").write_text(row["crop_id"] + "\n")  # the dataset and sheets change
    done = cli("run", "c.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stderr
    for rel in (*USER_FILES, ".git/.packed.tmp", "crops/notes.txt", "dataset/train/keep.txt"):
        assert (root / rel).is_file(), rel
    assert not old.exists()
    assert not (root / row["dataset_file"]).exists()  # rejected: our file did go
    assert sum(r["status"] == "rejected" for r in read_manifest(root)) == 1


@pytest.mark.parametrize("output,why", [("/", "root of the file system"), ("~", "home folder"),
                                        ("afile", "is a file")])
def test_outputs_that_cannot_be_ours_are_refused_before_any_write(tmp_path, output, why):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "afile").write_text("a user's file")
    write_config(tmp_path, output=output)
    before = tree(tmp_path)
    for command in (["validate", "c.yaml"], ["run", "c.yaml", "-q"]):
        line = one_line_error(cli(*command, cwd=tmp_path, env={"HOME": str(home)}))
        assert why in line and "set output to" in line
    assert tree(tmp_path) == before


def test_tilde_output_is_the_home_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    write_config(tmp_path, output="~/datasets/t")
    for _ in range(2):  # the rerun resumes instead of crashing
        done = cli("run", "c.yaml", "-q", cwd=tmp_path, env={"HOME": str(home)})
        assert done.returncode == 0, done.stderr
    assert (home / "datasets" / "t" / "manifest.csv").is_file()
    assert not (tmp_path / "~").exists()


def test_an_output_inside_the_source_folder_is_never_a_source(tmp_path):
    write_config(tmp_path, output="videos/out", sources=[{"path": "videos", "label": "demo"}])
    first = cli("run", "c.yaml", "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = cli("run", "c.yaml", "-q", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "sources: 2 done (0 with new work, 2 already done)" in second.stdout
    assert {r["source_id"].split("-")[1] for r in read_manifest(tmp_path / "videos" / "out")} == {
        "hopper_pan", "astronaut_zoom"}


def test_another_config_is_refused_unless_it_takes_over(work, videos):
    write_config(work, "other.yaml", videos, name="other")
    line = one_line_error(cli("run", "other.yaml", "-q", cwd=work))
    assert "belongs to config 't' (" in line and "c.yaml)" in line  # where it was first run
    assert f"not to 'other' ({work / 'other.yaml'})" in line and "--take-over" in line
    done = cli("run", "other.yaml", "-q", "--take-over", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "taken over by config 'other'" in done.stderr
    assert json.loads((work / "out" / ".pipeline-run.json").read_text())["name"] == "other"
    assert cli("run", "c.yaml", "-q", cwd=work).returncode == 2  # now it is the other's


def test_a_piped_config_carries_on_and_its_name_still_guards_the_folder(tmp_path, videos):
    """A config piped in names a different pipe on every run; it is known by its name, so the
    same command twice carries on, and a piped config of another name is still refused."""
    text = write_config(tmp_path, "p.yaml", videos).read_text()
    first = cli("run", "/dev/stdin", "-q", cwd=tmp_path, input=text)
    assert first.returncode == 0, first.stderr
    again = cli("run", "/dev/stdin", cwd=tmp_path, input=text)
    assert again.returncode == 0, again.stderr
    assert "0 with new work, 2 already done" in again.stdout, again.stdout
    other = cli("run", "/dev/stdin", "-q", cwd=tmp_path, input=text.replace("name: t", "name: other"))
    assert "belongs to config 't'" in one_line_error(other)


def test_an_output_of_an_earlier_version_is_adopted(work):
    (work / "out" / ".pipeline-run.json").unlink()  # as written before the marker existed
    done = cli("run", "c.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "made by an earlier version of this tool; adopted" in done.stderr
    assert "0 with new work" in done.stdout
    assert json.loads((work / "out" / ".pipeline-run.json").read_text())["name"] == "t"


# ----------------------------------------------------------------------------- self-repair

def _status(work: Path) -> dict[str, tuple[int, int, int]]:
    done = cli("status", "c.yaml", cwd=work)
    assert done.returncode == 0, done.stderr
    return {line.split()[0]: tuple(int(x) for x in line.split()[1:4])
            for line in done.stdout.splitlines()[2:6]}


def test_damaged_outputs_are_redone_on_a_plain_rerun(work):
    root = work / "out"
    rows = read_manifest(root)
    a, b = sorted({r["source_id"] for r in rows})
    (root / next(r["file"] for r in rows if r["source_id"] == a)).unlink()  # one crop gone
    crops_b = root / "crops" / b / "crops.jsonl"
    crops_b.write_bytes(crops_b.read_bytes()[:100])  # cut mid-row
    (root / "run.lock").write_text("12345")  # valid JSON, not an object
    (root / "state" / "sample" / f"{a}.error.json").write_text("[1, 2")
    (root / "state" / "detect" / f"{b}.json").write_text("[]")
    assert _status(work)["crop"] == (0, 0, 2)  # missing outputs: pending, not done
    done = cli("run", "c.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert read_manifest(root) == rows
    assert all((root / r["dataset_file"]).is_file() for r in rows)
    assert not list(root.glob(".*.tmp")) and not (root / "run.lock").exists()
    assert _status(work)["crop"] == (2, 0, 0)


def test_an_emptied_crops_file_does_not_shrink_the_dataset(work):
    rows = read_manifest(work / "out")
    for f in (work / "out" / "crops").glob("*/crops.jsonl"):
        f.write_text("")
    done = cli("run", "c.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stderr
    assert read_manifest(work / "out") == rows


def test_a_deleted_frame_is_redone_before_a_crop_change(work, videos):
    root = work / "out"
    frame = sorted((root / "frames").glob("*/*.jpg"))[0]
    frame.unlink()
    write_config(work, videos=videos, crop={"padding": 0.5})
    done = cli("run", "c.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert frame.is_file()
    rows = read_manifest(root)
    assert len(rows) == 10 and all((root / r["dataset_file"]).is_file() for r in rows)


# ----------------------------------------------------------------------------- sources, rejects

@pytest.mark.parametrize("file_first", [True, False])
def test_a_file_source_beats_the_folder_holding_it(tmp_path, file_first):
    write_config(tmp_path)
    entries = [{"path": "videos/hopper_pan.mp4", "label": "pilote_été"},  # relative, as users write
               {"path": "videos", "label": "飞行员"}]
    write_config(tmp_path, sources=entries if file_first else entries[::-1])
    done = cli("run", "c.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    labels = {r["source_id"].split("-")[1]: r["label"] for r in read_manifest(tmp_path / "out")}
    assert labels == {"hopper_pan": "pilote_été", "astronaut_zoom": "飞行员"}
    assert any((tmp_path / "out" / "dataset").glob("*/pilote_été/*.jpg"))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_rejects_in_common_encodings_are_read(work, encoding):
    row = read_manifest(work / "out")[0]
    (work / "out" / "rejects.txt").write_bytes(f"# refusé à la revue\n{row['crop_id']}\n".encode(encoding))
    done = cli("run", "c.yaml", "-q", cwd=work)
    assert done.returncode == 0, done.stderr
    rejected = [r["crop_id"] for r in read_manifest(work / "out") if r["status"] == "rejected"]
    assert rejected == [row["crop_id"]]


def test_unreadable_rejects_are_refused_before_the_stages(tmp_path):
    write_config(tmp_path)
    (tmp_path / "rejects.txt").write_bytes("abc_000000000_0\n".encode("utf-16-le"))  # no BOM
    line = one_line_error(cli("run", "c.yaml", "-q", "--rejects", "rejects.txt", cwd=tmp_path))
    assert "is not readable text" in line and "save it as UTF-8" in line
    assert not (tmp_path / "out" / "frames").exists()
