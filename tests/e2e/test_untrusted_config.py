"""A command in a shared config runs only when the config allows it, and never at plan: whole runs
through the CLI, in a temp working folder."""
from __future__ import annotations

import pytest

from helpers.support import DEMO, cli, one_error, write_config


HOPPER = DEMO / "hopper_pan.mp4"
EXEC = {"key": "Exec", "exec_cmd": "echo ran > pwned.txt; true #"}


@pytest.mark.slow
@pytest.mark.parametrize("when", ["pre_process", "after_move"])
def test_a_command_in_the_config_runs_only_when_allowed_and_never_at_plan(http_server, tmp_path,
                                                                          when):
    http_server.add_file("/hopper.mp4", HOPPER)
    sources = [{"url": http_server.url("/hopper.mp4")}]
    ytdlp = {"postprocessors": [{**EXEC, "when": when}]}
    write_config(tmp_path, sources=sources, download={"ytdlp": ytdlp})
    pwned = tmp_path / "pwned.txt"
    line = ("download.ytdlp.postprocessors.0: runs a command (Exec); set download.allow_commands: "
            "true to allow it (line 10)")
    assert one_error(cli("validate", "c.yaml", cwd=tmp_path)) == line
    for command in ("plan", "run"):
        assert one_error(cli(command, "c.yaml", cwd=tmp_path)) == line
    assert not pwned.exists()

    write_config(tmp_path, sources=sources, download={"ytdlp": ytdlp, "allow_commands": True})
    assert cli("validate", "c.yaml", cwd=tmp_path).returncode == 0
    planned = cli("plan", "c.yaml", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert not pwned.exists(), "plan lists the sources only: it runs no postprocessor"
    assert not (tmp_path / "out" / "videos").exists()
    ran = cli("run", "-q", "c.yaml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert pwned.read_text().strip() == "ran"
