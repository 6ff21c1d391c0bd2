"""What ``run``, ``status`` and ``report`` say after interrupts and reruns: through the CLI, in a
temp working folder, on the demo videos."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.demo import make_config
from helpers.processes import pause_when_finished
from helpers.support import REPO, cli

pytestmark = pytest.mark.slow  # whole runs of the demo videos


def project(tmp_path: Path, **overrides) -> Path:
    """The demo project's config file (``c.yaml``, output ``out``) in ``tmp_path``."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(make_config(tmp_path, output="out", **overrides)))
    return config


def summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / "summary.json").read_text())


def stopped_run(tmp_path: Path, config: Path, signum: int) -> subprocess.CompletedProcess:
    """``run`` stopped by ``signum`` once its first source is sampled: the run is paused
    (SIGSTOP) as soon as that marker appears and the signal waits for it to continue, so it
    arrives while units are left whatever the machine's speed."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", config.name, "-q"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    pause_when_finished(proc, tmp_path / "out" / "state" / "sample")
    proc.send_signal(signum)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("signum, by, code", [(signal.SIGINT, "Ctrl-C", 130),
                                              (signal.SIGTERM, "SIGTERM", 143)])
def test_status_says_the_last_run_was_interrupted_and_how_to_carry_on(tmp_path, signum, by, code):
    config = project(tmp_path, workers=1)
    stopped = stopped_run(tmp_path, config, signum)
    assert stopped.returncode == code, stopped.stdout + stopped.stderr

    status = cli("status", config.name, cwd=tmp_path)
    assert status.returncode == 1, status.stdout + status.stderr  # the run did not finish
    line = status.stdout.splitlines()[1]
    assert re.fullmatch(rf"the last run was interrupted by {by} at \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d, "
                        r"[0-2] of 3 sources through every stage(, stopped in (sample|detect|crop) of "
                        r"file-[\w-]+)?: run the same command again to carry on \(finished work is "
                        r"kept\)", line), line
    pending = [row.split() for row in status.stdout.splitlines() if row.startswith("crop ")]
    assert int(pending[0][3]) >= 1, status.stdout  # the table still shows what is left

    record = tmp_path / "out" / "state" / "interrupted.json"
    for damaged in ('{"signal": "SIGINT", "at": ', '["SIGINT"]', '{"signal": null, "at": 5}'):
        record.write_text(damaged)  # counts as absent, as every damaged state file
        again = cli("status", config.name, cwd=tmp_path)
        assert again.returncode == 0 and "Traceback" not in again.stderr, (damaged, again.stderr)
        assert "the last run" not in again.stdout, (damaged, again.stdout)

    resumed = cli("run", config.name, "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = cli("status", config.name, cwd=tmp_path)
    assert after.returncode == 0 and "interrupted" not in after.stdout, after.stdout


def test_status_says_a_killed_run_did_not_finish(tmp_path):
    config = project(tmp_path, workers=1)
    killed = stopped_run(tmp_path, config, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    status = cli("status", config.name, cwd=tmp_path)
    assert status.returncode == 1, status.stdout + status.stderr
    line = status.stdout.splitlines()[1]
    assert re.match(rf"the last run \(pid \d+ on {os.uname().nodename}, started "
                    r"[\d: -]+\) was killed before it finished, [0-2] of 3 sources through every stage",
                    line), line
    assert line.endswith(": run the same command again to carry on (finished work is kept)"), line
    assert cli("run", config.name, "-q", cwd=tmp_path).returncode == 0
    assert "killed" not in cli("status", config.name, cwd=tmp_path).stdout


def test_a_rerun_with_nothing_to_do_keeps_the_seconds_the_work_took(tmp_path):
    config = project(tmp_path)
    assert cli("run", config.name, "-q", cwd=tmp_path).returncode == 0
    worked = summary(tmp_path)["stage_seconds"]
    assert worked["sample"] > 0, worked

    again = cli("run", config.name, "-q", cwd=tmp_path)
    assert again.returncode == 0 and "0 with new work, 3 already done" in again.stdout, again.stdout
    rerun = summary(tmp_path)
    assert all(s["ran"] == 0 for s in rerun["stages"].values()), rerun["stages"]
    assert rerun["stage_seconds"] == pytest.approx(worked, abs=0.011)


def test_report_exits_1_while_a_video_failed_and_0_before_any_run(tmp_path):
    raw = make_config(tmp_path, output="out")
    raw["sources"] = raw["sources"][:2]
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))

    before = cli("report", config.name, cwd=tmp_path)
    assert before.returncode == 0, before.stdout + before.stderr
    assert before.stdout.splitlines()[-1] == "videos: 2 pending"

    config.write_text(yaml.safe_dump({**raw, "sources": [*raw["sources"], {"path": "gone.mp4"}]}))
    assert cli("run", config.name, "-q", cwd=tmp_path).returncode == 1
    after = cli("report", config.name, cwd=tmp_path)
    assert after.returncode == 1, after.stdout + after.stderr
    assert "videos: 2 done, 1 failed" in after.stdout

    config.write_text(yaml.safe_dump(raw))  # the failed one left out of the config: all done
    done = cli("report", config.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "videos: 2 done" in done.stdout


def test_status_says_the_counts_in_the_words_run_says_them(tmp_path):
    config = project(tmp_path)
    ran = cli("run", config.name, "-q", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    [crops] = [line for line in ran.stdout.splitlines() if line.startswith("crops: ")]

    status = cli("status", config.name, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line for line in status.stdout.splitlines()}
    assert rows["sample"].endswith(f"frames: {summary(tmp_path)['frames']}, dropped_blurry: 0")
    assert "=" not in status.stdout
    [dataset] = [line for line in status.stdout.splitlines() if line.startswith("last finished run (")]
    assert dataset.endswith(f"): {crops}"), (dataset, crops)

    # a damaged or hand-edited summary.json loses that line, never the status
    for damaged in ('{"crops": {"kept": 4', '[1, 2]', '{"crops": {"kept": "4", "per_label": {}, '
                    '"per_split": {}, "rejected": 0}}', '{"crops": {"kept": 4, "per_label": [], '
                    '"per_split": {}, "rejected": 0}}', '{"crops": null}'):
        (tmp_path / "out" / "summary.json").write_text(damaged)
        again = cli("status", config.name, cwd=tmp_path)
        assert again.returncode == 0 and "Traceback" not in again.stderr, (damaged, again.stderr)
        assert "last finished run" not in again.stdout and rows["sample"] in again.stdout, damaged
