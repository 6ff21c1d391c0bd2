"""Fault injection: kill runs at many moments and feed bad sources, then check the promises.

    python scripts/faults.py            # 24 kill points, every bad-source and signal case
    python scripts/faults.py --quick    # the short form the test suite runs

Part 1 (crash equivalence): a run is killed with SIGKILL at the start of each stage, during the
global steps and at random moments, then rerun with the same command; its dataset/, manifest and
sheets must equal those of a run that was never interrupted. Part 2 (bad sources): one run over
broken local files and misbehaving URLs (a local HTTP server on 127.0.0.1) must finish, fail each
bad source alone with the expected class, and keep the good ones. Part 3 (signals): SIGTERM and
SIGHUP, with one worker and with two, must stop a run as Ctrl-C does, and a SIGKILL of the run's
process must leave no pool worker running; the same command then finishes with the dataset of
an uninterrupted run. Part 4 (ownership, damage, odd configs): user files in or around the
output are never touched, outputs that cannot be the run's are refused, deleted or damaged
outputs are repaired by a plain rerun, and odd configs are refused with one line or read right.
Part 5 (review server): ``python -m pipeline review`` probed as an attacker would (encoded dots,
symlinks, a foreign host name or origin, bad lengths, bad names, eight saves at once).


Prints one table row per case (case, expected, observed, pass) and exits 1 if any row fails.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "videos"


@dataclass
class Row:
    case: str
    expected: str
    observed: str

    @property
    def ok(self) -> bool:
        """``expected`` may list alternatives: ``ok | sample: not-a-video``."""
        return self.observed in [e.strip() for e in self.expected.split("|")]


# ----------------------------------------------------------------------------- part 1: kills

def _config(work: Path, output: Path) -> Path:
    videos = work / "videos"
    if not videos.exists():
        videos.mkdir(parents=True)
        for name in sorted(os.listdir(DEMO)):
            shutil.copy(DEMO / name, videos / name)
    cfg = {"name": "faults", "output": str(output),
           "sources": [{"path": str(videos / n), "label": n.split("_")[0]}
                       for n in sorted(os.listdir(videos))],
           "sample": {"every": 0.5}, "split": {"train": 0.34, "val": 0.33, "test": 0.33}}
    path = work / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "run", str(config), "-q"],
                          capture_output=True, text=True, timeout=600)


def snapshot(root: Path) -> tuple:
    """What must not depend on interruptions: dataset files, manifest rows, sheet files."""
    dataset = sorted(str(p.relative_to(root)) for p in (root / "dataset").rglob("*") if p.is_file())
    with open(root / "manifest.csv", newline="") as f:
        rows = [tuple(r.items()) for r in csv.DictReader(f)]
    sheets = sorted(p.name for p in (root / "sheets").glob("*")) if (root / "sheets").exists() else []
    metadata = sorted((str(p.relative_to(root)), p.read_text())
                      for p in (root / "dataset").rglob("metadata.csv"))
    return dataset, rows, sheets, metadata


def _trigger(kind: str, root: Path):
    """A function telling when to kill: a marker/scratch path appears, or a time has passed."""
    if kind.startswith("after "):
        delay = float(kind.split()[1].rstrip("s"))
        start = time.monotonic()
        return lambda: time.monotonic() - start >= delay
    folder, pattern = {
        "start of download": (root, "run.lock"),
        "start of sample": (root / "frames", ".*.tmp"),
        "start of detect": (root / "state" / "sample", "*.json"),
        "start of crop": (root / "state" / "detect", "*.json"),
        "global steps": (root, ".dataset.tmp"),  # the last step has begun
    }[kind]
    return lambda: folder.exists() and any(folder.glob(pattern))


def kill_once(config: Path, root: Path, kind: str, timeout: float = 120) -> str:
    """Start a run, SIGKILL it when ``kind`` happens; say what was reached."""
    trigger = _trigger(kind, root)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline and not trigger():
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return "killed"
    return "finished before the kill"


def _status_after_kill(config: Path) -> str:
    """What ``status`` says of a run killed in its last step (dataset, manifest, sheets)."""
    done = subprocess.run([sys.executable, "-m", "pipeline", "status", str(config)],
                          capture_output=True, text=True, timeout=120)
    asked = "did not finish: run the same command again" in done.stdout
    return f"exit {done.returncode}" + (", asks for a rerun" if asked else ", says nothing")


def crash_rows(work: Path, kills: int, seed: int) -> list[Row]:
    reference_cfg = _config(work, work / "reference")
    started = time.monotonic()
    done = _run(reference_cfg)
    if done.returncode != 0:
        return [Row("reference run", "exit 0", f"exit {done.returncode}: {done.stderr[-200:]}")]
    duration = time.monotonic() - started
    expected = snapshot(work / "reference")
    rng = random.Random(seed)
    kinds = ["start of download", "start of sample", "start of detect", "start of crop",
             "global steps"]
    # random moments inside the run (a resumed run is shorter, so stay well before the end)
    kinds += [f"after {rng.uniform(0.3, 0.7 * duration):.2f}s" for _ in range(max(0, kills - len(kinds)))]
    kinds = kinds[:kills] if kills < len(kinds) else kinds
    rows = []
    for i, kind in enumerate(kinds):
        output = work / f"killed{i}"
        config = _config(work, output)
        reached = kill_once(config, output, kind)
        if kind == "global steps" and reached == "killed":
            rows.append(Row("status after SIGKILL at global steps", "exit 1, asks for a rerun",
                            _status_after_kill(config)))
        if i % 4 == 3:  # now and then, kill the resumed run too
            kill_once(config, output, f"after {rng.uniform(0.2, duration / 2):.2f}s")
        resumed = _run(config)
        if resumed.returncode != 0:
            observed = f"resume exit {resumed.returncode}: {resumed.stderr.strip()[-160:]}"
        elif snapshot(output) != expected:
            observed = "differs from an uninterrupted run"
        elif list(output.glob("**/.*.tmp")):
            observed = "scratch files left"
        else:
            observed = "identical"
        rows.append(Row(f"SIGKILL at {kind} ({reached})", "identical", observed))
        shutil.rmtree(output, ignore_errors=True)
    return rows


# ----------------------------------------------------------------------------- part 2: bad sources

def _local_cases(folder: Path) -> list[tuple[str, dict, str]]:
    """(case, source entry, expected 'ok' or 'stage: class') for broken local inputs."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("this is a text file\n" * 50)
    whole = (DEMO / "hopper_pan.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])

    def video(name: str, frames: int, size: tuple[int, int]) -> Path:
        writer = cv2.VideoWriter(str(folder / name), cv2.VideoWriter_fourcc(*"mp4v"), 5, size)
        for i in range(frames):
            writer.write(np.full((size[1], size[0], 3), 40 * i % 255, np.uint8))
        writer.release()
        return folder / name

    cases = [
        ("zero-byte file", {"path": str(folder / "zero.mp4")}, "download: not-a-video"),
        ("text file named .mp4", {"path": str(folder / "text.mp4")}, "download: not-a-video"),
        ("truncated MP4 (first half)", {"path": str(folder / "truncated.mp4")},
         "ok | download: not-a-video | sample: not-a-video"),
        ("1-frame video", {"path": str(video("one.mp4", 1, (320, 240)))}, "ok"),
        ("portrait video", {"path": str(video("portrait.mp4", 3, (360, 640)))}, "ok"),
        ("4K video", {"path": str(video("uhd.mp4", 2, (3840, 2160)))}, "ok"),
        ("missing local path", {"path": str(folder / "nowhere.mp4")}, "download: not-found"),
        ("segment after the end", {"path": str(DEMO / "astronaut_zoom.mp4"),
                                   "segments": [{"start": "9:00"}]}, "sample: config"),
    ]
    from pipeline.stages.download import find_ffmpeg

    ffmpeg = find_ffmpeg()
    if ffmpeg:
        audio = folder / "audio_only.mp4"
        subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1",
                        "-c:a", "aac", str(audio)], check=True)
        cases.append(("audio only, no video stream", {"path": str(audio)}, "download: not-a-video"))
    broken = REPO.parent / "shared" / "testdata" / "broken" / "error_i_p.264"
    if broken.exists():
        cases.append(("corrupt H.264 stream", {"path": str(broken)}, "ok"))
    return cases


def _http_cases(server, www: Path) -> list[tuple[str, dict, str]]:
    shutil.copy(DEMO / "hopper_pan.mp4", www / "good.mp4")
    server.not_found("/404.mp4")
    server.forbidden("/403.mp4")
    server.server_error("/500.mp4")
    server.stall("/stall.mp4", seconds=20, after_bytes=2000, file=DEMO / "hopper_pan.mp4")
    server.drop("/cut.mp4", after_bytes=3000, drop_ranged=True, file=DEMO / "hopper_pan.mp4")
    shutil.copy(DEMO / "astronaut_zoom.mp4", www / "a.mp4")
    server.not_found("/gone.mp4")
    server.page("/list.html", "<html><head><title>One gone</title></head><body>"
                "<video src='a.mp4'></video><video src='gone.mp4'></video></body></html>")
    url = server.url
    return [
        ("HTTP 200 (control)", {"url": url("/good.mp4")}, "ok"),
        ("HTTP 404", {"url": url("/404.mp4")}, "download: unavailable"),
        ("HTTP 403", {"url": url("/403.mp4")}, "download: unavailable"),
        ("HTTP 500", {"url": url("/500.mp4")}, "download: network"),
        ("server stalls (timeout)", {"url": url("/stall.mp4")}, "download: network"),
        ("connection cut every time", {"url": url("/cut.mp4")}, "download: network"),
        ("playlist: its good entry", {"url": url("/list.html")}, "ok"),
        ("playlist: its unavailable entry", None, "download: unavailable"),
    ]


def bad_source_rows(work: Path) -> list[Row]:
    sys.path.insert(0, str(REPO / "tests"))
    from helpers.httpserver import LocalHTTPServer

    from pipeline.config.load import parse_config
    from pipeline.runner.run import run

    www = work / "www"
    www.mkdir(parents=True, exist_ok=True)
    with LocalHTTPServer(www) as server:
        cases = _local_cases(work / "bad") + _http_cases(server, www)
        entries = [c[1] for c in cases if c[1] is not None]
        cfg = parse_config({"output": str(work / "bad-out"), "sources": entries,
                            "sample": {"every": 1.0},
                            "download": {"retries": 1, "socket_timeout": 2}})
        report = run(cfg, progress=False)
    rows = []
    by_index: dict[int, list] = {}
    from pipeline.sources.expand import expand_sources
    from pipeline.state.markers import State

    for video in expand_sources(cfg, State(cfg.output_dir)).videos:
        by_index.setdefault(video.spec_index, []).append(video.sid)
    outcome = {o.sid: o for o in report.outcomes}
    expansion_failed = {o.title: o for o in report.outcomes if o.title and o.title.startswith("sources.")}
    index = 0
    for case, entry, expected in cases:
        if entry is None:  # the playlist's second entry: the one after the previous case's first
            sids = by_index.get(index - 1, [])
            o = outcome.get(sids[1]) if len(sids) > 1 else None
        else:
            sids = by_index.get(index, [])
            o = outcome.get(sids[0]) if sids else expansion_failed.get(f"sources.{index}")
            index += 1
        observed = "no outcome" if o is None else ("ok" if o.ok else f"{o.failed_stage}: {o.error_class}")
        rows.append(Row(case, expected, observed))
    rows.append(Row("run finishes with exit 1 (some failed)", "1", str(report.exit_code)))
    return rows


# ----------------------------------------------------------------------------- part 3: signals

SIGNAL_CASES = [  # (signal, workers, in the short form)
    ("SIGTERM", 1, False), ("SIGTERM", 2, True), ("SIGHUP", 1, False), ("SIGHUP", 2, False),
    ("SIGKILL", 2, True),
]


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a parent that never reaps it)."""
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return state.returncode == 0 and not state.stdout.strip().startswith("Z")


def stop_once(config: Path, root: Path, name: str, workers: int, timeout: float = 120) -> str:
    """Start a run, send it ``name`` once its units run; what was wrong afterwards, or ''."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    markers, kids = root / "state" / "sample", []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if markers.exists() and any(markers.glob("*.json")):
            kids = _children(proc.pid)
            if len(kids) >= workers or workers == 1:
                break
        time.sleep(0.01)
    if proc.poll() is not None:
        return "finished before the signal"
    proc.send_signal(getattr(signal, name))
    _, err = proc.communicate(timeout=60)
    deadline = time.monotonic() + 5
    while any(_running(p) for p in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in kids if _running(p)]
    if left:
        return f"{len(left)} worker(s) left running"
    if name == "SIGKILL":
        return ""  # the process cannot clean up; the next run must
    problems = []
    if proc.returncode != 128 + getattr(signal, name):
        problems.append(f"exit {proc.returncode}")
    if "run the same command again to resume" not in err or "Traceback" in err:
        problems.append(f"stderr: {err.strip()[-120:]!r}")
    if (root / "run.lock").exists():
        problems.append("lock left")
    if list(root.glob("**/.*.tmp")):
        problems.append("scratch left")
    return ", ".join(problems)


def signal_rows(work: Path, quick: bool) -> list[Row]:
    """SIGTERM and SIGHUP stop a run as Ctrl-C does (exit 128 + signal, hint, lock released,
    scratch removed, no worker left); after a SIGKILL of the run's process its pool workers die
    too. The same command then gives the dataset of an uninterrupted run, with no source failed."""
    reference = _config(work, work / "reference")
    done = _run(reference)
    if done.returncode != 0:
        return [Row("signals: reference run", "exit 0", f"exit {done.returncode}")]
    expected = snapshot(work / "reference")
    rows = []
    for name, workers, short in SIGNAL_CASES:
        if quick and not short:
            continue
        output = work / f"{name.lower()}-{workers}"
        config = _config(work, output)
        config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "workers": workers}))
        want = "all workers gone, resumed identical" if name == "SIGKILL" else \
            f"exit {128 + getattr(signal, name)}, clean stop, resumed identical"
        problem = stop_once(config, output, name, workers)
        if not problem:
            resumed = _run(config)
            if resumed.returncode != 0:
                problem = f"resume exit {resumed.returncode}: {resumed.stderr.strip()[-120:]}"
            elif snapshot(output) != expected:
                problem = "resume differs from an uninterrupted run"
        rows.append(Row(f"{name} with workers: {workers}", want, problem or want))
        shutil.rmtree(output, ignore_errors=True)
    return rows


# ------------------------------------------------------------ part 4: ownership, damage, odd configs

def _cli(*args: str, cwd: Path, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)} if home else None
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env=env)


def _said(done: subprocess.CompletedProcess) -> str:
    """What a user sees of a run: 'exit N', and its last error line when it failed."""
    if "Traceback" in done.stderr:
        return f"traceback: {done.stderr.strip().splitlines()[-1][:100]}"
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return f"exit {done.returncode}" + (f": {last[:100]}" if done.returncode else "")


def _refused(done: subprocess.CompletedProcess, words: str) -> str:
    """'refused' for exit 2 with the reason in one line (a config error: under its file name)."""
    lines = done.stderr.strip().splitlines()
    if done.returncode == 2 and len(lines) <= 2 and words in lines[-1] and "Traceback" not in done.stderr:
        return "refused"
    return _said(done)


class _Project:
    """A user's working folder: videos (at a fixed place, so source ids stay), a config with the
    default relative output ``out``."""

    def __init__(self, work: Path, videos: Path, **overrides):
        self.dir, self.root = work, work / "out"
        work.mkdir(parents=True, exist_ok=True)
        self.write(videos, **overrides)

    def write(self, videos: Path, file: str = "c.yaml", **overrides) -> None:
        cfg = {"name": "faults", "output": "out", "sample": {"every": 2.0},
               "sources": [{"path": str(videos / "hopper_pan.mp4"), "label": "hopper"}]}
        cfg.update(overrides)
        (self.dir / file).write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")

    def run(self, *args: str, home: Path | None = None) -> subprocess.CompletedProcess:
        return _cli("run", "c.yaml", "-q", *args, cwd=self.dir, home=home)

    def rows(self) -> list[dict]:
        try:
            with open(self.root / "manifest.csv", newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))
        except OSError:
            return []

    def copy(self, to: Path) -> _Project:
        shutil.copytree(self.dir, to, symlinks=True)
        clone = object.__new__(_Project)
        clone.dir, clone.root = to, to / "out"
        return clone


_USER_FILES = ("dataset/mydata.csv", "sheets/budget.ods", "sub/.draft.tmp/ch1.txt", ".vim.tmp",
               ".git/.packed.tmp")


def _plant(root: Path) -> None:
    for rel in _USER_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"a user's {rel}\n")


def _intact(root: Path) -> bool:
    return all((root / rel).is_file() for rel in _USER_FILES)


def ownership_rows(work: Path) -> list[Row]:
    """Part 4: the run never touches what is not its own, repairs damage to what is, and turns
    odd configs into one-line errors (or reads them right)."""
    videos = work / "videos"
    videos.mkdir(parents=True)
    for name in ("hopper_pan.mp4", "astronaut_zoom.mp4"):
        shutil.copy(DEMO / name, videos / name)
    home = work / "home"
    home.mkdir()
    rows: list[Row] = []
    add = lambda case, expected, observed: rows.append(Row(case, expected, observed))  # noqa: E731

    # -- ownership
    p = _Project(work / "userfiles", videos)
    _plant(p.root)
    add("output holds user files (no marker)", "refused, files intact",
        _refused(p.run(), "did not write") + (", files intact" if _intact(p.root) else ", files lost"))
    for case, output, words in (("output: /", "/", "root of the file system"),
                                ("output: ~ (home folder)", "~", "home folder"),
                                ("output is a file", "c.yaml", "is a file")):
        q = _Project(work / f"out-{len(rows)}", videos, output=output)
        before = sorted(q.dir.rglob("*"))
        validate = _refused(_cli("validate", "c.yaml", cwd=q.dir, home=home), words)
        observed = _refused(q.run(home=home), words)
        changed = sorted(q.dir.rglob("*")) != before
        add(case, "refused by validate, refused by run", "changed files" if changed else
            f"{validate} by validate, {observed} by run")
    q = _Project(work / "tilde", videos, output="~/datasets/faults")
    first, second = q.run(home=home), q.run(home=home)
    add("output: ~/datasets/faults, run twice", "exit 0, under $HOME",
        f"{_said(second) if first.returncode == 0 else _said(first)}"
        + (", under $HOME" if (home / "datasets" / "faults" / "manifest.csv").is_file() else "")
        + (", literal ./~ made" if (q.dir / "~").exists() else ""))
    q = _Project(work / "inside", videos, output=str(videos / "out"),
                 sources=[{"path": str(videos), "label": "demo"}])
    q.run()
    again = q.run()
    add("output inside the source folder, rerun", "nothing new listed",
        "nothing new listed" if "(0 with new work, 2 already done)" in again.stdout else _said(again))

    # -- the reference run the damage cases copy, user files added inside it afterwards
    base = _Project(work / "base", videos)
    done = base.run()
    reference = base.rows()
    if done.returncode != 0 or not reference:
        return rows + [Row("reference run (part 4)", "exit 0", _said(done))]
    q = base.copy(work / "planted")
    _plant(q.root)
    (q.root / "rejects.txt").write_text(reference[0]["crop_id"] + "\n")  # dataset/ and sheets/ rebuilt
    add("user files inside our output, rebuilt dataset", "exit 0, files intact",
        _said(q.run()) + (", files intact" if _intact(q.root) else ", files lost"))
    q = base.copy(work / "linked")
    elsewhere = work / "other-disk"
    shutil.move(str(q.root / "dataset"), str(elsewhere))
    (q.root / "dataset").symlink_to(elsewhere)
    (elsewhere / "NOTES.md").write_text("a user's notes\n")
    (q.root / "rejects.txt").write_text(reference[0]["crop_id"] + "\n")  # dataset/ rebuilt
    said = _said(q.run())
    kept = (q.root / "dataset").is_symlink() and (elsewhere / "NOTES.md").is_file() and not [
        x for x in (*q.root.iterdir(), *work.iterdir()) if ".old." in x.name]
    add("dataset/ a link to another folder, rebuilt", "exit 0, link and notes kept",
        said + (", link and notes kept" if kept else ", link or notes lost"))
    q = base.copy(work / "other")
    q.write(videos, "other.yaml", name="other")
    other = _cli("run", "other.yaml", "-q", cwd=q.dir)
    add("another config on the same output", "refused", _refused(other, "belongs to config 'faults'"))
    add("another config with --take-over", "exit 0",
        _said(_cli("run", "other.yaml", "-q", "--take-over", cwd=q.dir)))
    q = base.copy(work / "adopt")
    (q.root / ".pipeline-run.json").unlink()
    adopted = q.run()
    add("output of an earlier version (no marker)", "adopted",
        "adopted" if adopted.returncode == 0 and "adopted" in adopted.stderr else _said(adopted))

    def damage(case: str, harm, **config) -> None:
        q = base.copy(work / f"damage-{len(rows)}")
        sid = sorted({r["source_id"] for r in reference})[0]
        harm(q.root, sid)
        if config:
            q.write(videos, **config)
        pending = _cli("status", "c.yaml", cwd=q.dir).stdout
        done = q.run()
        same = q.rows() == reference if not config else len(q.rows()) == len(reference)
        files = all((q.root / r["dataset_file"]).is_file() for r in q.rows())
        add(case, "repaired", "repaired" if done.returncode == 0 and same and files
            else _said(done) + ("" if same else ", manifest differs"))
        if case.startswith("one crop file deleted"):
            counts = next((line.split()[1:] for line in pending.splitlines() if line.startswith("crop")),
                          ["?", "?", "?"])
            add("status after a crop file is deleted", "crop done 0, pending 1",
                f"crop done {counts[0]}, pending {counts[2]}")

    def first_crop(root: Path, sid: str) -> Path:
        return sorted((root / "crops" / sid).glob("*.jpg"))[0]

    damage("one crop file deleted", lambda r, sid: first_crop(r, sid).unlink())
    damage("one frame deleted, then a crop change",
           lambda r, sid: sorted((r / "frames" / sid).glob("*.jpg"))[0].unlink(),
           crop={"padding": 0.4})
    damage("crops.jsonl truncated", lambda r, sid: (r / "crops" / sid / "crops.jsonl").write_bytes(
        (r / "crops" / sid / "crops.jsonl").read_bytes()[:77]))
    damage("crops.jsonl emptied", lambda r, sid: (r / "crops" / sid / "crops.jsonl").write_text(""))
    damage("run.lock holding 12345", lambda r, sid: (r / "run.lock").write_text("12345"))

    def garble(root: Path, sid: str) -> None:
        (root / "state" / "crop" / f"{sid}.json").write_text("[1, 2, 3]")
        (root / "state" / "detect" / f"{sid}.json").write_bytes(b"\xff\xfe garbage")
        (root / "state" / "sample" / f"{sid}.error.json").write_text("12")
        (root / ".pipeline-run.json").write_text("null")

    damage("garbled markers, error record, run marker", garble)

    # -- odd configs
    def validate(name: str, text: str) -> subprocess.CompletedProcess:
        (work / name).write_text(text, encoding="utf-8")
        for video in ("a.mp4", "b.mp4"):  # validate checks that local sources exist
            (work / video).touch()
        return _cli("validate", name, cwd=work)

    bomb = [f"l0: &l0 [{', '.join(['lol'] * 9)}]"] + [
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    for case, text in (("9-level alias bomb", "\n".join(bomb) + "\nsources: [{path: a.mp4}]\n"),
                       ("9-level alias bomb under download.ytdlp",
                        "sources: [{path: a.mp4}]\ndownload:\n  ytdlp:\n"
                        + "".join(f"    {line}\n" for line in bomb))):
        started = time.monotonic()
        observed = _refused(validate("bomb.yaml", text), "aliases")
        took = time.monotonic() - started  # a whole interpreter start included
        add(case, "refused in < 5 s", f"{observed} in {'< 5' if took < 5 else f'{took:.0f}'} s")
    add("duplicate key (sources: twice)", "refused",
        _refused(validate("dup.yaml", "sources: [{path: a.mp4}]\nsources: [{path: b.mp4}]\n"),
                 "given twice (lines 1 and 2)"))
    exec_pp = ("sources: [{url: 'https://example.invalid/v'}]\ndownload:\n  ytdlp:\n"
               "    postprocessors: [{key: Exec, exec_cmd: 'id > pwned.txt', when: pre_process}]\n")
    for case, text, words in (
            ("yt-dlp Exec postprocessor without allow_commands", exec_pp,
             "runs a command (Exec); set download.allow_commands: true"),
            ("label of 64 four-byte letters (256 bytes)", "sources: [{path: a.mp4, label: "
             + "\U0001d400" * 64 + "}]\n", "bytes"),
            ("labels Hopper and hopper", "sources: [{path: a.mp4, label: Hopper}, "
             "{path: b.mp4, label: hopper}]\n", "differ only by case"),
            ("sample: {fps: .inf}", "sources: [{path: a.mp4}]\nsample: {fps: .inf}\n", "finite"),
            ("crop: {aspect: .nan}", "sources: [{path: a.mp4}]\ncrop: {aspect: .nan}\n", "finite")):
        observed = _refused(validate("odd.yaml", text), words)
        if (work / "pwned.txt").exists():
            observed += ", and the command ran"
        add(case, "refused", observed)
    add("Unicode labels pilote_été, 飞行员", "exit 0",
        _said(validate("uni.yaml", "sources: [{path: a.mp4, label: pilote_été}, "
                                   "{path: b.mp4, label: 飞行员}]\n")))
    for order in ("file first", "folder first"):
        entries = [{"path": str(videos / "hopper_pan.mp4"), "label": "pilote_été"},
                   {"path": str(videos), "label": "飞行员"}]
        q = _Project(work / f"precedence-{order[:4]}", videos,
                     sources=entries if order == "file first" else entries[::-1])
        done = q.run()
        labels = {r["source_id"].split("-")[1]: r["label"] for r in q.rows()}
        add(f"file inside a folder source, {order}", "file's label",
            "file's label" if labels.get("hopper_pan") == "pilote_été" and
            labels.get("astronaut_zoom") == "飞行员" else _said(done) + f" {labels}")
    for encoding in ("utf-16", "cp1252"):
        q = base.copy(work / f"rejects-{encoding}")
        (q.root / "rejects.txt").write_bytes(
            f"# refusé\n{reference[0]['crop_id']}\n".encode(encoding))
        done = q.run()
        rejected = [r["crop_id"] for r in q.rows() if r["status"] == "rejected"]
        add(f"rejects.txt in {encoding}", "read", "read" if rejected == [reference[0]["crop_id"]]
            else _said(done))
    q = _Project(work / "rejects-bad", videos)
    (q.dir / "bad.txt").write_bytes("x_000000000_0\n".encode("utf-16-le"))
    done = q.run("--rejects", "bad.txt")
    add("rejects.txt UTF-16 without BOM", "refused before the stages",
        _refused(done, "not readable text") + (" before the stages" if not (q.root / "frames").exists()
                                               else " after the stages"))
    return rows


# ----------------------------------------------------------------------------- part 5: review server

def _serve(project: _Project) -> tuple[subprocess.Popen, str]:
    """``python -m pipeline review`` on a free port, as a user starts it; (process, base URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "review", "c.yaml"], cwd=project.dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise RuntimeError(f"review did not start: {line}{proc.stderr.read()}")
    return proc, line.split()[2].removesuffix("/sheets/index.html")


def review_rows(work: Path) -> list[Row]:
    """Part 5: the review server, probed as an attacker would: it gives out the page and the
    files it links only, answers its own host name and page only, and saves whole files."""
    import json
    import socket
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(REPO / "tests"))
    from helpers.reviewkit import http_request, page_server, raw_request

    videos = work / "videos"
    videos.mkdir(parents=True)
    shutil.copy(DEMO / "hopper_pan.mp4", os.fsencode(videos) + b"/hopper\xff.mp4")  # linked in videos/
    p = _Project(work / "review", videos, sources=[{"path": str(videos), "label": "hopper"}])
    done = p.run()
    link = next((q.name for q in (p.root / "videos").glob("*.mp4") if q.is_symlink()), None)
    if done.returncode != 0 or link is None:
        return [Row("review server run (part 5)", "exit 0, a video linked", _said(done))]
    secret = work / "secret.txt"
    secret.write_text("secret\n")
    crop = p.rows()[0]["file"]
    (p.root / crop).with_name("leak.jpg").symlink_to(secret)
    proc, base = _serve(p)
    rows: list[Row] = []
    add = lambda case, expected, observed: rows.append(Row(case, expected, observed))  # noqa: E731
    get = lambda path, **h: str(http_request(base, "GET", path, h).status)  # noqa: E731
    try:
        add("review: /crops/%2e%2e/ (folder listing)", "404", get("/crops/%2e%2e/"))
        add("review: a source video via videos/ (%2E%2E)", "404", get(f"/crops/%2E%2E/videos/{link}"))
        add("review: ..%2f and double-encoded %252e%252e", "404 404",
            get("/crops/..%2fmanifest.csv") + " " + get("/crops/%252e%252e/manifest.csv"))
        add("review: a symlink in crops/ to a file outside", "404",
            get("/" + str(Path(crop).parent / "leak.jpg")))
        add("review: foreign Host (DNS rebinding)", "403",
            get("/sheets/index.html", Host="rebind.attacker.example:" + base.rsplit(":", 1)[1]))
        server = page_server(base)
        own = {"Origin": base, "X-Review-Token": server["token"], "X-Review-Version": "absent"}
        post = lambda path, body, **h: http_request(base, "POST", path, {**own, **h}, body)  # noqa: E731
        add("review: save from a foreign Origin", "403", str(post("/api/rejects", b"x\n",
                                                                   Origin="http://evil.example").status))
        add("review: save without the page's token", "403",
            str(http_request(base, "POST", "/api/rejects", {"Origin": base}, b"x\n").status))
        head = f"POST /api/rejects HTTP/1.1\nHost: {base.removeprefix('http://')}\n" + "".join(
            f"{k}: {v}\n" for k, v in own.items())
        lengths = [raw_request(base, head + (f"Content-Length: {n}\n" if n else ""), b"x\n" * 99).status
                   for n in ("-1", "abc", None, str(10**12))]
        add("review: Content-Length -1, abc, missing, 10^12", "400 400 411 413", " ".join(map(str, lengths)))
        bad = [post("/api/identities", body).status for body in (b"p1 ../../etc\n", b"p1 Ann\nBob\n")]
        saved = ", saved" if (p.root / "identities.txt").exists() else ", nothing saved"
        add("review: names ../../etc, with a line break", "400 400, nothing saved",
            " ".join(map(str, bad)) + saved)
        bodies = [b"".join(b"c%d_%06d\n" % (i, k) for k in range(20_000)) for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda b: post("/api/rejects", b).status, bodies))
        whole = (p.root / "rejects.txt").read_bytes() in bodies
        add("review: 8 saves at once", "8 answered, file is one save",
            f"{sum(a in (200, 409) for a in answers)} answered, file is "
            + ("one save" if whole else "a mix"))
        add("review: file changed since the page loaded", "409", str(post("/api/rejects", b"y\n").status))
        (p.root / "run.lock").write_text(json.dumps({"pid": proc.pid, "host": socket.gethostname()}))
        fresh = page_server(base)["versions"]["rejects.txt"]
        add("review: save while a run holds the folder", "423",
            str(post("/api/rejects", b"y\n", **{"X-Review-Version": fresh}).status))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 kill points (the test suite's form)")
    parser.add_argument("--kills", type=int, default=None, help="number of kill points (default 24)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    kills = args.kills or (4 if args.quick else 24)
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        work = Path(tmp)
        # the kills and the signals in one folder: the signal cases compare with the reference
        # run the kill cases made (their rerun of it skips every stage), not with a run of their own
        rows = (crash_rows(work / "runs", kills, args.seed) + bad_source_rows(work / "bad")
                + signal_rows(work / "runs", args.quick) + ownership_rows(work / "ownership")
                + review_rows(work / "review"))
    width = max(len(r.case) for r in rows)
    expected_width = max(len(r.expected) for r in rows)
    observed_width = max(len(r.observed) for r in rows)
    print(f"{'case':<{width}}  {'expected':<{expected_width}}  {'observed':<{observed_width}}  pass")
    for r in rows:
        print(f"{r.case:<{width}}  {r.expected:<{expected_width}}  {r.observed:<{observed_width}}  "
              f"{'PASS' if r.ok else 'FAIL'}")
    failed = sum(not r.ok for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
