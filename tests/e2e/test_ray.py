"""The ray executor on a real local Ray instance: the same config gives the same dataset, manifest
and summary as the local executor; a worker that dies is retried by Ray and its finished stages
are kept; failing sources end in the summary exactly as locally; the output folder is checked to
be shared; Ctrl-C cancels the tasks.

Everything stays on 127.0.0.1: the Ray instance's node address is the loopback address, its
dashboard and usage stats are off, and its processes get an HTTP proxy on a closed local port
(``NO_PROXY`` for 127.0.0.1), so the cloud-metadata probe Ray's head process makes on start
(169.254.169.254) goes nowhere.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import pipeline.exec.ray
import pipeline.runner.run
from pipeline.config.load import parse_config
from pipeline.exec.base import ExecutorError
from pipeline.runner.run import run
from helpers.demo import dataset_of, demo_config, without_stages
from helpers.local_ray import LOCAL_ONLY, cli_env
from helpers.processes import finished, stop_and_wait, wait_while_running

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"

pytestmark = [
    pytest.mark.ray, pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason='Ray is not installed: pip install -e ".[ray]" to run the ray '
                              "executor tests on a local Ray instance"),
]

@pytest.fixture(scope="module")
def ray_instance():
    """One real local Ray instance for the module: 2 CPUs, a small object store, no dashboard."""
    saved = {k: os.environ.get(k) for k in LOCAL_ONLY}
    os.environ.update(LOCAL_ONLY)
    try:
        import ray

        # "local": a new instance, never one another process started on this machine
        ray.init(address="local", num_cpus=2, object_store_memory=128 * 2**20,
                 include_dashboard=False, _node_ip_address="127.0.0.1")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
        gcs = ray.get_runtime_context().gcs_address
        assert addresses == {"127.0.0.1"} and gcs.startswith("127.0.0.1:"), (addresses, gcs)
        # hook functions of this module run in Ray workers, which cannot import a test module
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        yield ray
    finally:
        try:
            ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        except ValueError:  # not registered: the instance did not start
            pass
        ray.shutdown()


RAY = {"kind": "ray"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The demo on the local executor: what every Ray run must reproduce."""
    tmp = tmp_path_factory.mktemp("ray-demo")
    report = run(parse_config(demo_config(tmp, "local")), progress=False)
    assert report.exit_code == 0
    return tmp, dataset_of(tmp / "local")


def test_ray_gives_the_same_dataset_as_local(ray_instance, reference):
    tmp, expected = reference
    report = run(parse_config(demo_config(tmp, "ray", executor=RAY)), progress=False)
    assert report.exit_code == 0 and len(report.outcomes) == 3
    assert all(set(o.stages.values()) == {"ran"} for o in report.outcomes)
    got = dataset_of(tmp / "ray")
    assert got["manifest.csv"].count("\n") > 10
    assert got == expected
    assert not list((tmp / "ray" / "state").glob(".probe-*")), "the probe files are removed"
    assert not (tmp / "ray" / "run.lock").exists()
    # a rerun on Ray skips every unit, like a local rerun
    again = run(parse_config(demo_config(tmp, "ray", executor=RAY)), progress=False)
    assert all(set(o.stages.values()) == {"skipped"} for o in again.outcomes)
    rerun = dataset_of(tmp / "ray")
    assert rerun["summary"]["stages"]["detect"] == {"ran": 0, "skipped": 3, "failed": 0}
    assert without_stages(rerun) == without_stages(expected)


def _dies_after_first_attempt(attempts_dir: str, victim: str, video, *args):
    """A unit whose worker process dies once, after the unit's work is done but before it
    returns (as a node that goes away): Ray's retry must then find every stage finished."""
    from pipeline.runner.unit import process_video as real  # in the worker: the real unit

    outcome = real(video, *args)
    if video.sid.startswith(victim):
        log = Path(attempts_dir) / f"{video.sid}.attempts"
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        if len(log.read_text().splitlines()) == 1:
            os._exit(1)
    return outcome


def test_a_worker_that_dies_is_retried_and_keeps_its_finished_stages(ray_instance, reference,
                                                                      monkeypatch):
    tmp, expected = reference
    attempts = tmp / "attempts"
    attempts.mkdir()
    monkeypatch.setattr(pipeline.runner.run, "process_video",
                        functools.partial(_dies_after_first_attempt, str(attempts), "file-hopper_pan-"))
    report = run(parse_config(demo_config(tmp, "retried", executor=RAY)), progress=False)
    assert report.exit_code == 0, [(o.sid, o.message) for o in report.failed]
    [log] = attempts.glob("*.attempts")
    pids = log.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1], "the first worker died, a second one retried it"
    retried = {o.sid: o for o in report.outcomes}[log.name.removesuffix(".attempts")]
    assert set(retried.stages.values()) == {"skipped"}, "the retry redid no finished stage"
    got = dataset_of(tmp / "retried")
    # the retried unit counts as skipped (its stages ran in the attempt that died)
    assert got["summary"]["stages"]["detect"] == {"ran": 2, "skipped": 1, "failed": 0}
    assert without_stages(got) == without_stages(expected)


def _dies_before_any_work(victim: str, video, *args):
    from pipeline.runner.unit import process_video as real

    if video.sid.startswith(victim):
        os._exit(1)
    return real(video, *args)


def test_a_unit_whose_retries_run_out_fails_alone_and_the_next_run_redoes_it(ray_instance,
                                                                             reference, monkeypatch):
    tmp, expected = reference
    raw = demo_config(tmp, "lost", executor={"kind": "ray", "max_retries": 1})
    with monkeypatch.context() as m:
        m.setattr(pipeline.runner.run, "process_video",
                  functools.partial(_dies_before_any_work, "file-astronaut_zoom-"))
        report = run(parse_config(raw), progress=False)
    assert report.exit_code == 1
    [lost] = report.failed
    assert "astronaut_zoom" in lost.sid
    assert (lost.failed_stage, lost.error_class) == ("download", "worker-lost")
    assert "executor.max_retries" in lost.message
    assert sum(o.ok for o in report.outcomes) == 2
    summary = json.loads((tmp / "lost" / "summary.json").read_text())
    assert summary["sources"] == {"total": 3, "done": 2, "failed": 1}
    assert summary["failed"][0]["class"] == "worker-lost"
    assert not list((tmp / "lost" / "state").rglob("*.error.json")), "a lost unit is not a recorded failure"
    # the next run redoes it without --retry-failed, and the result is the uninterrupted one
    again = run(parse_config(raw), progress=False)
    assert again.exit_code == 0
    assert dataset_of(tmp / "lost")["manifest.csv"] == expected["manifest.csv"]


def test_failing_sources_end_in_the_summary_like_with_the_local_executor(ray_instance, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("not a video at all\n" * 100)
    sources = [{"path": str(DEMO / "hopper_pan.mp4")}, {"path": str(bad / "empty.mp4")},
               {"path": str(bad / "text.mp4")}, {"path": str(tmp_path / "missing.mp4")},
               {"path": str(DEMO / "cameraman_hopper_pan.mp4"), "segments": [{"start": 60}]}]
    results = {}
    for kind in ("local", "ray"):
        cfg = parse_config({"output": str(tmp_path / kind), "sources": sources,
                            "sample": {"every": 2.0}, "executor": {"kind": kind}})
        for attempt in ("first", "rerun"):  # the rerun skips the recorded failures
            report = run(cfg, progress=False)
            summary = json.loads((tmp_path / kind / "summary.json").read_text())
            results[kind, attempt] = (
                report.exit_code,
                sorted((o.sid, o.failed_stage, o.error_class, o.message) for o in report.failed),
                sorted(summary["failed"], key=lambda f: f["source_id"]),
                summary["sources"], summary["stages"])
    for attempt in ("first", "rerun"):
        assert results["ray", attempt] == results["local", attempt]
    exit_code, failed, *_ = results["ray", "first"]
    assert exit_code == 1
    assert sorted(f[2] for f in failed) == ["config", "not-a-video", "not-a-video", "not-found"]
    assert sum("recorded earlier" in f[3] for f in results["ray", "rerun"][1]) == 3


def _probe_on_another_disk(disk: str, root, theirs, mine, token):
    """The worker side of the storage probe on a node that has its own folder at that path."""
    from pipeline.exec.ray import _probe

    shutil.copytree(root, disk, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".probe-*"))
    return _probe(disk, theirs, mine, token)


def test_an_output_folder_the_workers_do_not_share_is_refused(ray_instance, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline.exec.ray, "_probe",
                        functools.partial(_probe_on_another_disk, str(tmp_path / "node-disk")))
    cfg = parse_config({"output": str(tmp_path / "out"), "executor": RAY,
                        "sources": [{"path": str(DEMO / "hopper_pan.mp4")}]})
    with pytest.raises(ExecutorError) as info:
        run(cfg, progress=False)
    message = str(info.value)
    assert f"the output folder {tmp_path / 'out'} is not shared with the Ray workers" in message
    assert "cannot read" in message and "on storage every node mounts at the same path" in message
    root = tmp_path / "out"
    assert not (root / "run.lock").exists()
    # the run marker (the folder is this config's now) and the probe's folder: nothing was done
    assert sorted(p.name for p in root.rglob("*")) == [".pipeline-run.json", "state"]


def _one_goes_on_the_others_hang(goes: str, fails: bool, video, *args):
    """The unit of the source ``goes`` runs (or raises, with ``fails``); the others hang, so
    only cancelling their tasks frees their CPUs within minutes."""
    from pipeline.core.errors import OutputUnwritable
    from pipeline.runner.unit import process_video as real

    if not video.sid.startswith(goes):
        time.sleep(600)
    elif fails:
        raise OutputUnwritable("the output folder X is full (No space left on device: X)")
    return real(video, *args)


def _cpus_freed(ray, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return ray.available_resources().get("CPU", 0) == 2


HALF_A_CPU = {"kind": "ray", "num_cpus": 0.5}  # every unit of these tests runs at once


def test_a_full_output_folder_on_a_worker_stops_the_run_as_locally(ray_instance, tmp_path,
                                                                   monkeypatch):
    """An error a unit raises (rather than records) ends the run with that error, not Ray's,
    and the other units are cancelled."""
    from pipeline.core.errors import OutputUnwritable

    monkeypatch.setattr(pipeline.runner.run, "process_video",
                        functools.partial(_one_goes_on_the_others_hang, "file-astronaut_zoom-", True))
    cfg = parse_config(demo_config(tmp_path, "full", executor=HALF_A_CPU))
    started = time.monotonic()
    with pytest.raises(OutputUnwritable) as info:
        run(cfg, progress=False)
    assert time.monotonic() - started < 120
    assert type(info.value) is OutputUnwritable
    assert str(info.value).startswith("the output folder X is full")
    assert not (tmp_path / "full" / "run.lock").exists()
    assert _cpus_freed(ray_instance), "the hanging units were cancelled"


class _CtrlCAtFirstSource(logging.Handler):
    """The user presses Ctrl-C as the first source finishes: as its first line comes to the
    ``pipeline.run`` logger, which the run writes to in the calling process as each source's
    outcome comes back (docs/resume.md)."""

    def emit(self, record: logging.LogRecord) -> None:
        if "file-v" in record.getMessage():  # a line of a source, not the run's own
            raise KeyboardInterrupt


def test_ctrl_c_in_the_driver_cancels_the_running_and_queued_tasks(ray_instance, tmp_path,
                                                                  monkeypatch, caplog):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(4):
        shutil.copy(DEMO / "hopper_pan.mp4", videos / f"v{i}.mp4")
    caplog.set_level(logging.INFO, logger="pipeline.run")
    ctrl_c = _CtrlCAtFirstSource()
    logging.getLogger("pipeline.run").addHandler(ctrl_c)
    monkeypatch.setattr(pipeline.runner.run, "process_video",
                        functools.partial(_one_goes_on_the_others_hang, "file-v0-", False))
    cfg = parse_config({"output": str(tmp_path / "out"), "sources": [{"path": str(videos)}],
                        "sample": {"every": 0.25}, "executor": HALF_A_CPU})
    logged = []
    started = time.monotonic()
    try:
        report = run(cfg, progress=False, log=logged.append)
    finally:
        logging.getLogger("pipeline.run").removeHandler(ctrl_c)
    # under the 600 s the hanging units sleep: they were cancelled, not waited for (the first
    # source alone took 2 minutes at load 10 on 2 cores)
    assert time.monotonic() - started < 500
    assert report.interrupted and report.exit_code == 130 and len(report.outcomes) == 1
    assert "run the same command again to resume" in logged[-1]
    assert _cpus_freed(ray_instance), "the hanging units were cancelled"
    root = tmp_path / "out"
    assert [p.name for p in root.glob("state/crop/*.json")] == [f"{report.outcomes[0].sid}.json"]
    assert not list(root.glob("*/.*.tmp")) and not (root / "run.lock").exists()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "SIGTERM"])
def test_cli_executor_flag_and_ctrl_c_cancel_the_tasks(ray_instance, tmp_path, sig, code):
    """--executor ray on a config whose executor is local (its address is kept); Ctrl-C, or
    SIGTERM (ray.init installs a SIGTERM handler of its own, which must not replace the run's)."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(4):
        shutil.copy(DEMO / "hopper_pan.mp4", videos / f"v{i}.mp4")
    address = ray_instance.get_runtime_context().gcs_address
    raw = {"output": str(tmp_path / "out"), "sources": [{"path": str(videos)}],
           "sample": {"every": 0.25}, "executor": {"kind": "local", "address": address}}
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    command = [sys.executable, "-m", "pipeline", "run", str(config_file), "-q", "--executor", "ray"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_while_running(lambda: bool(finished(tmp_path / "out" / "state" / "sample")), proc,
                       "a source's frames sampled")
    # The run stops its units and says so within 30 s; the process then exits, which on a
    # loaded machine may take Ray's shutdown a while longer: each is waited for, not a fixed time.
    err = stop_and_wait(proc, sig, 30.0, 0.0)
    assert proc.returncode == code, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    assert sig == signal.SIGINT or "interrupted by SIGTERM" in err
    root = tmp_path / "out"
    assert not (root / "run.lock").exists()
    assert not list(root.glob("*/.*.tmp")), "nothing half-written is left"
    # the tasks were cancelled: the instance's CPUs are free again, nothing more is written
    assert _cpus_freed(ray_instance)
    files = sorted(root.rglob("*"))
    time.sleep(1.0)
    assert sorted(root.rglob("*")) == files
    # the same command resumes and finishes
    # a bound on a hang: on a loaded 2-core machine the 4 sources take minutes
    resumed = subprocess.run(command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                             timeout=1200)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((root / "summary.json").read_text())
    assert summary["sources"]["done"] == 4 and summary["stages"]["sample"]["skipped"] >= 1


def test_cli_starts_and_stops_its_own_local_ray_instance(ray_instance, reference, tmp_path):
    """No address: the run starts a Ray instance of its own (and shuts it down at the end)."""
    ref_tmp, expected = reference
    raw = demo_config(ref_tmp, "own-instance", executor=RAY)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config_file)], cwd=tmp_path,
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Started a local Ray instance" in done.stderr
    assert "sources: 3 done" in done.stdout
    assert dataset_of(ref_tmp / "own-instance") == expected


def test_an_unreachable_cluster_is_a_clear_error(ray_instance, tmp_path):
    raw = {"output": str(tmp_path / "out"), "sources": [{"path": str(DEMO / "hopper_pan.mp4")}],
           "executor": {"kind": "ray", "address": "127.0.0.1:1"}}
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config_file), "-q"],
                          cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert ("error: executor: cannot reach the Ray cluster at 127.0.0.1:1 (executor.address): "
            "Connection refused") in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out" / "run.lock").exists()

