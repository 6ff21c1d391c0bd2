"""A config is a file people share and download: reading or running one must not run commands
its reader did not agree to, nor make names a disk refuses, nor take numbers that are not numbers;
and ``validate`` says ok only to what ``run`` accepts. Everything through the CLI, in a temp
working folder (a command a config allows, run: tests/e2e/test_untrusted_config.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.support import REPO, cli, one_error, write_config

HOPPER = REPO / "demo" / "videos" / "hopper_pan.mp4"


@pytest.mark.parametrize("ytdlp,key,what", [
    ({"postprocessors": [{"key": "FFmpegMetadata"}, {"key": "ExecAfterDownload", "exec_cmd": "id"}]},
     "download.ytdlp.postprocessors.1", "runs a command (ExecAfterDownload)"),
    ({"netrc_cmd": "cat ~/.ssh/id_rsa"}, "download.ytdlp.netrc_cmd", "runs a command"),
    ({"ffmpeg_location": "/tmp/x/ffmpeg"}, "download.ytdlp.ffmpeg_location",
     "runs the program it names"),
    ({"external_downloader": {"default": "/tmp/x/curl"}}, "download.ytdlp.external_downloader",
     "runs the program it names"),
    ({"external_downloader_args": {"aria2c": ["--on-download-complete=/tmp/x"]}},
     "download.ytdlp.external_downloader_args", "passes arguments to a program"),
    ({"js_runtimes": {"node": {"path": "/tmp/x/node"}}}, "download.ytdlp.js_runtimes.node.path",
     "runs the program it names"),
    ({"print_to_file": {"video": [["echo hi", "~/.bashrc"]]}}, "download.ytdlp.print_to_file",
     "appends text to any file it names"),
])
def test_every_ytdlp_option_that_runs_a_program_needs_allow_commands(tmp_path, ytdlp, key, what):
    write_config(tmp_path, sources=[{"url": "https://example.org/v"}], download={"ytdlp": ytdlp})
    refused = one_error(cli("validate", "c.yaml", cwd=tmp_path))
    assert refused.startswith(f"{key}: {what}"), refused
    assert "; set download.allow_commands: true to allow it (line " in refused
    write_config(tmp_path, sources=[{"url": "https://example.org/v"}],
                 download={"ytdlp": ytdlp, "allow_commands": True})
    assert cli("validate", "c.yaml", cwd=tmp_path).returncode == 0


def test_options_that_run_nothing_stay_allowed(tmp_path):
    ytdlp = {"external_downloader": {"default": "native"}, "http_headers": {"X-A": "b"},
             "postprocessors": [{"key": "FFmpegMetadata"}], "js_runtimes": {"deno": {}}}
    write_config(tmp_path, sources=[{"url": "https://example.org/v"}], download={"ytdlp": ytdlp})
    checked = cli("validate", "c.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr


# ----------------------------------------------------------------------------- names

CLIP = str(HOPPER)
WIDE = "\U0001d4d0" * 64  # 64 letters of 4 bytes each: 256 bytes, one more than a folder name holds


@pytest.mark.parametrize("sections,line", [
    ({"sources": [{"path": CLIP, "label": WIDE}]},
     "sources.0.label: must be at most 240 bytes of UTF-8 (got 256): a folder name holds 255 "
     "bytes on most disks, and sheet file names add to it (line 7)"),
    ({"sources": [{"path": CLIP, "segments": [{"start": 0, "label": WIDE}]}]},
     "sources.0.segments.0.label: must be at most 240 bytes of UTF-8 (got 256): a folder name "
     "holds 255 bytes on most disks, and sheet file names add to it (line 9)"),
    ({"sources": [{"path": CLIP, "label": "Hopper"}, {"path": str(REPO / "demo"), "label": "hopper"}]},
     "sources.1.label: 'hopper' and 'Hopper' (sources.0.label) differ only by case or Unicode "
     "form: one folder on macOS and Windows; write them the same (line 9)"),
    ({"sources": [{"path": CLIP, "segments": [{"start": 0, "label": "Pilote_\u00e9t\u00e9"}]},
                  {"path": str(REPO / "demo"), "label": "pilote_e\u0301te\u0301"}]},
     "sources.1.label: 'pilote_\u00e9t\u00e9' and 'Pilote_\u00e9t\u00e9' (sources.0.segments.0.label) "
     "differ only by case or Unicode form: one folder on macOS and Windows; write them the same "
     "(line 11)"),
])
def test_names_a_disk_refuses_are_config_errors(tmp_path, sections, line):
    write_config(tmp_path, **sections)
    assert one_error(cli("validate", "c.yaml", cwd=tmp_path)) == line
    assert one_error(cli("run", "-q", "c.yaml", cwd=tmp_path)) == line
    assert not (tmp_path / "out").exists()


def test_a_label_of_64_letters_of_three_bytes_is_fine(tmp_path):
    write_config(tmp_path, sources=[{"path": CLIP, "label": "\u98de" * 64}])
    assert cli("validate", "c.yaml", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("lines,error", [
    ("c1_000000000_0 " + WIDE + "\n",
     "identities.txt:1: the name of cluster c1_000000000_0 must be at most 240 bytes of UTF-8 "
     "(got 256)"),
    ("c1_000000000_0 Ada\n# comment\nc2_000001000_1 ada\n",
     "identities.txt:3: the name 'ada' and 'Ada' (line 1) differ only by case or Unicode "
     "form: one folder on macOS and Windows; write them the same"),
    ("c1_000000000_0 Hopper\n",
     "identities.txt:1: the name 'Hopper' and 'hopper' (sources.0.label in the config) differ "
     "only by case or Unicode form: one folder on macOS and Windows; write them the same"),
])
def test_names_a_disk_refuses_in_identities_txt_stop_validate_and_run(tmp_path, lines, error):
    pytest.importorskip("dlib", reason="the identity extra (dlib-bin) is not installed")
    from pipeline.state.ownership import check_output, identity_of

    config = write_config(tmp_path, sources=[{"path": CLIP, "label": "hopper"}], identity={})
    root = tmp_path / "out"
    check_output(root, identity_of("t", config, root)).write(lambda _: None)  # as a run left it
    (root / "identities.txt").write_text(lines, encoding="utf-8")
    for command in ("validate", "run"):
        done = cli(command, "-q", "c.yaml", cwd=tmp_path) if command == "run" \
            else cli(command, "c.yaml", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"error: {tmp_path / 'out' / error}"), done.stderr
    assert not (tmp_path / "out" / "state").exists(), "no stage ran"


# ----------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("section,text,key", [
    ("sample", "{fps: .inf}", "sample.fps"),
    ("sample", "{fps: .nan}", "sample.fps"),
    ("sample", "{every: .nan}", "sample.every"),
    ("crop", "{aspect: .nan}", "crop.aspect"),
    ("crop", "{min_sharpness: .inf}", "crop.min_sharpness"),
    ("detect", "{min_size: .inf}", "detect.min_size"),
    ("sources", "[{path: a.mp4, segments: [{start: 0, end: .inf}]}]", "sources.0.segments.0.end"),
])
def test_numbers_that_are_not_finite_are_config_errors(tmp_path, section, text, key):
    body = {"sources": "[{path: a.mp4}]", section: text}
    (tmp_path / "c.yaml").write_text("".join(f"{k}: {v}\n" for k, v in body.items()))
    line = one_error(cli("validate", "c.yaml", cwd=tmp_path))
    assert line.startswith(f"{key}: must be a finite number"), line
    assert line.endswith("(line 2)") or line.endswith("(line 1)"), line


# ----------------------------------------------------------------------------- validate = run

def test_validate_refuses_an_identity_config_without_dlib_as_run_does(tmp_path):
    write_config(tmp_path, sources=[{"path": CLIP}], identity={})
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def without_dlib(*args: str) -> subprocess.CompletedProcess:
        # as a machine without the identity extra: an import of dlib fails
        code = ("import sys; sys.modules['dlib'] = None; from pipeline.cli.main import main; "
                f"main({list(args)!r})")
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                              text=True, env=env, timeout=300)

    ran, checked = without_dlib("run", "-q", "c.yaml"), without_dlib("validate", "c.yaml")
    assert ran.returncode == 2 and "dlib" in ran.stderr, ran.stderr
    assert checked.returncode == 2
    assert checked.stderr == ran.stderr
