"""Config loading: defaults, time parsing, and the exact messages users see for bad configs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config.fields import parse_time
from pipeline.config.load import load_config
from pipeline.io.yamlfile import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_sources_alone_is_a_complete_config(tmp_path):
    cfg = load_config(write(tmp_path, "sources:\n  - path: a.mp4\n"))
    assert cfg.sample.mode == "every" and cfg.detect.model == "yunet"
    assert cfg.crop.padding.left == 0.3 and cfg.crop.size == 224
    assert str(cfg.output_dir) == "data/c"  # named after its file, c.yaml
    assert cfg.executor.kind == "local"


@pytest.mark.parametrize("text,kind,address", [
    ("executor: local\n", "local", None),
    ("executor: {kind: local}\n", "local", None),
    ("executor: {kind: ray}\n", "ray", None),
    ("executor: {kind: ray, address: auto, num_cpus: 0.5, num_gpus: 1, max_retries: 0}\n", "ray", "auto"),
])
def test_executor_forms(tmp_path, text, kind, address):
    cfg = load_config(write(tmp_path, "sources: [{path: a.mp4}]\n" + text))
    assert (cfg.executor.kind, cfg.executor.address) == (kind, address)
    if "num_cpus" in text:
        assert (cfg.executor.num_cpus, cfg.executor.num_gpus, cfg.executor.max_retries) == (0.5, 1.0, 0)
    else:
        assert (cfg.executor.num_cpus, cfg.executor.num_gpus, cfg.executor.max_retries) == (1.0, 0.0, 3)


@pytest.mark.parametrize("text,seconds", [(65, 65.0), (65.5, 65.5), ("1:05", 65.0),
                                          ("1:02:03.5", 3723.5), ("0:59", 59.0)])
def test_times(text, seconds):
    assert parse_time(text) == seconds


BAD = [
    ("sources: []\n", "sources: give at least one source"),
    ("name: x\n", "sources: required"),
    ("sources:\n  - path: a.mp4\n    lable: x\n",
     "sources.0.lable: unknown key (allowed: url, path, label, segments, filter) (line 3)"),
    ("sources:\n  - {path: a.mp4, url: 'http://x'}\n",
     "sources.0: give exactly one of 'url' or 'path' (line 2)"),
    ("sources:\n  - path: a.mp4\n    segments:\n      - {start: '1:40', end: '1:05'}\n",
     "sources.0.segments.0: end (65 s) must be after start (100 s) (line 4)"),
    ("sources:\n  - path: a.mp4\n    segments:\n      - {start: 'soon'}\n",
     "sources.0.segments.0.start: must be a time such as 65, 65.5, \"1:05\" or \"1:02:03\" (line 4)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  min_score: 2\n",
     "detect.min_score: must be between 0 and 1 (line 3)"),
    ("sources: [{path: a.mp4}]\ndetect: {model: yolo}\n",
     "detect.model: must be one of 'yunet' or 'ssdlite-person' (line 2)"),
    ("sources: [{path: a.mp4}]\nsample: {every: 1, fps: 2}\n",
     "sample: give only one of every, fps, count, scene (got every, fps) (line 2)"),
    ("sources: [{path: a.mp4}]\nsample: {every: -1}\n", "sample.every: must be greater than 0 (line 2)"),
    ("sources: [{path: a.mp4}]\nsplit: {train: 0.5}\n",
     "split: train + val + test must sum to 1 (got 0.7) (line 2)"),
    ("sources: [{path: a.mp4}]\nworkers: '2'\n", "workers: must be a whole number (got str '2') (line 2)"),
    ("sources: [{path: a.mp4}]\ncrop: {padding: -1}\n",
     "crop.padding: must be between 0 and 10 (a fraction of the box size) (line 2)"),
    ("sources: [{path: a.mp4}]\ncrop: {policy: best}\n",
     "crop.policy: must be one of 'all', 'largest' or 'top-k' (line 2)"),
    ("sources: [{path: a.mp4}]\ndetect: {tiles: 0}\n",
     "detect.tiles: must be auto, off or a number of tiles along the long side (1-16) (line 2)"),
    ("sources: [{path: a.mp4}]\ndetect: {tiles: many}\n",
     "detect.tiles: must be auto, off or a number of tiles along the long side (1-16) (line 2)"),
    ("sources: [{path: a.mp4}]\ndetect: {upscale: 0.5}\n",
     "detect.upscale: must be auto, off or the largest enlargement factor (1-8) (line 2)"),
    ("sources: [{path: a.mp4}]\ndetect: {every: 0}\n", "detect.every: must be between 1 and 1000 (line 2)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: {min_iou: 2}\n",
     "detect.track.min_iou: must be between 0.01 and 1 (line 3)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: {low_score: 1.5}\n",
     "detect.track.low_score: must be between 0 and 1 (line 3)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: {low_score: yes}\n",
     "detect.track.low_score: must be a number (got bool True) (line 3)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: {low_scor: 0.4}\n",
     "detect.track.low_scor: unknown key (allowed: min_iou, max_distance, max_missed, low_score, "
     "lost_s) (line 3)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: {lost_s: -1}\n",
     "detect.track.lost_s: must be between 0 and 60 (line 3)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: {lost_s: 1000}\n",
     "detect.track.lost_s: must be between 0 and 60 (line 3)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: {lost_s: .nan}\n",
     "detect.track.lost_s: must be a finite number (got nan) (line 3)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: {lost_s: 1s}\n",
     "detect.track.lost_s: must be a number (got str '1s') (line 3)"),
    ("sources: [{path: a.mp4}]\ncrop: {per_track: {min_gap_s: 1}}\n",
     "crop.per_track.max: required (line 2)"),
    ("sources: [{path: a.mp4}]\ncrop: {per_track: {max: 0}}\n",
     "crop.per_track.max: must be at least 1 (line 2)"),
    ("sources: [{path: a.mp4}]\ncrop: {per_track: {max: 5, min_gap_s: -1}}\n",
     "crop.per_track.min_gap_s: must be at least 0 (line 2)"),
    ("sources: [{path: a.mp4}]\ncrop: {per_track: {max: 5, weights: {blur: 1}}}\n",
     "crop.per_track.weights.blur: unknown key (allowed: score, sharpness, size, frontal) (line 2)"),
    ("sources: [{path: a.mp4}]\ncrop: {max_outside: 1.5}\n",
     "crop.max_outside: must be between 0 and 1 (line 2)"),
    ("sources: [{path: a.mp4}]\ncrop: {min_sharpness: -3}\n",
     "crop.min_sharpness: must be at least 0 (line 2)"),
    ("sources: [{path: a.mp4}]\ndedupe: {scope: everywhere}\n",
     "dedupe.scope: must be one of 'source' or 'all' (line 2)"),
    ("sources: [{path: a.mp4}]\ndedupe: {max_distance: 64}\n",
     "dedupe.max_distance: must be between 0 and 32 (line 2)"),
    ("sources: [{path: a.mp4}, {path: a.mp4}]\n",
     "sources.1: duplicate of an earlier source (a.mp4)"),
    ("sources: [{path: a.mp4, label: ../../etc}]\n",
     "sources.0.label: must not contain a path separator ('/') (line 1)"),
    ("sources: [{path: a.mp4, label: '..'}]\n", "sources.0.label: must not contain '..' (line 1)"),
    ("sources: [{path: a.mp4, label: \"a\\0b\"}]\n",
     "sources.0.label: must not contain control or invisible characters (U+0000) (line 1)"),
    ("sources: [{path: a.mp4, label: \"tab\\there\"}]\n",
     "sources.0.label: must not contain control or invisible characters (U+0009) (line 1)"),
    ("sources: [{path: a.mp4, label: 'a:b'}]\n",
     "sources.0.label: must not contain ':' (not allowed in Windows file names) (line 1)"),
    ("sources: [{path: a.mp4, label: 'COM1.x'}]\n",
     "sources.0.label: 'COM1.x' is a reserved file name on Windows (line 1)"),
    ("sources: [{path: a.mp4, label: 'été.'}]\n",
     "sources.0.label: must not end with '.' or a space (Windows drops them) (line 1)"),
    ("sources: [{path: a.mp4, label: 'a~b'}]\n",
     "sources.0.label: may hold letters and digits of any script, space, '_', '-', '.', '+' "
     "(got '~', U+007E) (line 1)"),
    ("sources:\n  - path: a.mp4\nsources:\n  - path: b.mp4\n",
     "sources: given twice (lines 1 and 3); keep one"),
    ("sources: [{path: a.mp4}]\ndownload:\n  ytdlp: {http_headers: {X: 1}, http_headers: {Y: 2}}\n",
     "http_headers: given twice (lines 3 and 3); keep one"),
    ("sources: [{path: a.mp4}]\nexecutor: ray\n",
     "executor: must be local, or a mapping such as {kind: ray, address: auto} (line 2)"),
    ("sources: [{path: a.mp4}]\nexecutor: {kind: dask}\n",
     "executor.kind: must be one of 'local' or 'ray' (line 2)"),
    ("sources: [{path: a.mp4}]\nexecutor:\n  kind: ray\n  num_cpus: 0\n",
     "executor.num_cpus: must be greater than 0 (line 4)"),
    ("sources: [{path: a.mp4}]\nexecutor: {kind: ray, num_gpus: -1}\n",
     "executor.num_gpus: must be at least 0 (line 2)"),
    ("sources: [{path: a.mp4}]\nexecutor: {kind: ray, max_retries: -1}\n",
     "executor.max_retries: must be between 0 and 100 (line 2)"),
    ("sources: [{path: a.mp4}]\nexecutor: {kind: ray, adress: auto}\n",
     "executor.adress: unknown key (allowed: kind, address, num_cpus, num_gpus, max_retries) (line 2)"),
    ("sources: [{path: a.mp4}]\nexecutor: {kind: ray, address: 6379}\n",
     "executor.address: must be text (got int 6379) (line 2)"),
    ("sources: [{path: a.mp4}]\ndetect: {tiles: on}\n",
     "detect.tiles: true (YAML's reading of on/yes) is not a setting: write auto, off or a number "
     "of tiles (line 2)"),
    ("sources: [{url: not a url}]\n",
     "sources.0.url: 'not a url' is not a URL: give one with its scheme (https://...) or a yt-dlp "
     "search such as \"ytsearch20:words\" (line 1)"),
    ("sources: [{url: 'youtube.com/watch?v=x'}]\n", "sources.0.url: 'youtube.com/watch?v=x' is not a URL"),
    ("sources: [{path: a.mp4}]\ndownload: {proxies: ['ftp://ann:s3cret@10.0.0.7:21']}\n",
     "download.proxies.0: 'ftp://***@10.0.0.7:21' is not a proxy URL: give http://, https://, "
     "socks5://, socks5h:// with a host, e.g. http://user:password@host:3128 (line 2)"),
    ("sources: [{path: a.mp4}]\ndownload: {proxies: ['http://ann:s3cret@:3128']}\n",
     "download.proxies.0: 'http://***@:3128' is not a proxy URL"),
    ("sources: [{path: a.mp4}]\ndownload: {proxies: ['http://10.0.0.7:port']}\n",
     "download.proxies.0: 'http://10.0.0.7:port' is not a proxy URL"),
    ("sources: [{path: a.mp4}]\ndownload: {proxies: 'http://10.0.0.7:3128'}\n",
     "download.proxies: must be a list (got str 'http://10.0.0.7:3128') (line 2)"),
    ("sources: [{path: a.mp4}]\ndownload:\n  proxies: ['http://10.0.0.7:3128']\n"
     "  ytdlp: {proxy: 'http://10.0.0.8:3128'}\n",
     "download.ytdlp.proxy: give proxies in download.proxies only (a list, rotated when a host "
     "blocks the run) (line 4)"),
    ("sources: [{path: a.mp4}]\ndownload: {backoff: {pause_s: 0}}\n",
     "download.backoff.pause_s: must be greater than 0 (line 2)"),
    ("sources: [{path: a.mp4}]\ndownload: {backoff: {factor: 0.5}}\n",
     "download.backoff.factor: must be at least 1 (line 2)"),
    ("sources: [{path: a.mp4}]\ndownload: {backoff: {budget_s: -1}}\n",
     "download.backoff.budget_s: must be at least 0 (line 2)"),
    ("sources: [{path: a.mp4}]\nsample: 5\n", "sample: must be a mapping of its keys (got int 5) (line 2)"),
    ("sources: [{path: a.mp4}]\ndetect:\n  track: [1]\n",
     "detect.track: must be a mapping of its keys (got list [1]) (line 3)"),
    ("- just\n- a list\n", "(top level): must be a mapping with at least 'sources'"),
    ("sources: [\n", "not valid YAML: expected the node content"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_configs_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert any(p.startswith(message) for p in info.value.problems), info.value.problems


def test_validate_exit_codes_and_output(tmp_path):
    good = write(tmp_path, "sources: [{path: a.mp4}]\n")
    (tmp_path / "a.mp4").touch()
    ok = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(good)],
                        capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0 and ": ok (1 source: 0 URL, 1 local" in ok.stdout
    assert "detect: yunet, backend auto, min_score 0.7, min_size 0, max_per_frame 50, tiles auto, " \
           "upscale off; crop: aspect 1, size 224" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [{path: a.mp4}]\ndetect: {min_score: 3}\n")
    res = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(bad)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2
    assert "detect.min_score: must be between 0 and 1 (line 2)" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert not (tmp_path / "data").exists()
    assert "identity" not in ok.stdout  # no identity section, no identity line


def test_validate_prints_the_identity_settings_it_checked(tmp_path, shared_models):
    """validate makes the run's own checks (the reference photo is read and its face found), so
    its identity line speaks of a config a run accepts; an empty photo is refused as run does."""
    import cv2

    from pipeline.embedders.dlib import RESNET, SHAPE5
    from helpers.support import DEMO

    if not all((shared_models / s.filename).is_file() for s in (RESNET, SHAPE5)):
        pytest.skip(f"dlib weights not in {shared_models}")
    pytest.importorskip("dlib", reason="the identity extra is not installed")
    cache = tmp_path / "models"
    cache.mkdir()
    for spec in (RESNET, SHAPE5):
        shutil.copy(shared_models / spec.filename, cache / spec.filename)
    (tmp_path / "a.mp4").write_bytes((DEMO / "hopper_pan.mp4").read_bytes())
    ok, frame = cv2.VideoCapture(str(DEMO / "hopper_pan.mp4")).read()
    assert ok
    cv2.imwrite(str(tmp_path / "a.jpg"), frame)
    ident = write(tmp_path, "sources: [{path: a.mp4}]\nidentity: {references: {ann: [a.jpg]}}\n")
    env = {**os.environ, "PIPELINE_MODELS": str(cache)}
    said = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(ident)],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert said.returncode == 0, said.stderr
    assert ("identity: dlib, max_distance 0.4, min_face 20 px, 1 reference name(s) (1 photo(s)), "
            "keep all, per_person off") in said.stdout
    (tmp_path / "a.jpg").write_bytes(b"")
    refused = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(ident)],
                             capture_output=True, text=True, cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert refused.stderr == ("error: identity.references.ann: cannot read the image a.jpg (paths "
                              "are relative to the working folder)\n")


def test_shipped_configs_are_valid():
    for name in ("pilots.yaml", "demo.yaml"):
        load_config(REPO / "configs" / name)


def _bomb(levels: int, under: str = "") -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    doc = "\n".join(lines) + "\nsources: [{path: a.mp4}]\n"
    if under:  # the same bomb inside download.ytdlp, passed through to yt-dlp unchecked
        doc = "sources: [{path: a.mp4}]\ndownload:\n  ytdlp:\n" + "".join(
            f"    {line}\n" for line in lines)
    return doc


@pytest.mark.parametrize("under", ["", "download.ytdlp"])
def test_alias_bomb_is_refused_at_once(tmp_path, under):
    """9 levels of 9 aliases would expand to 9**9 values (gigabytes): refused from the node
    graph in well under a second, through the CLI a user runs."""
    import time

    path = write(tmp_path, _bomb(9, under))
    done = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "values once its aliases (*name) are expanded" in done.stderr
    assert "Traceback" not in done.stderr
    began = time.process_time()
    with pytest.raises(ConfigError, match="aliases"):
        load_config(path)
    assert time.process_time() - began < 0.5


def test_aliases_within_the_limit_still_work(tmp_path):
    cfg = load_config(write(tmp_path, "sources:\n  - &d {path: a.mp4, label: pilots}\n"
                                      "  - {<<: *d, path: b.mp4}\n  - {<<: *d, path: c.mp4, label: x}\n"))
    assert [s.label for s in cfg.sources] == ["pilots", "pilots", "x"]


@pytest.mark.parametrize("label", ["pilote_été", "飞行员", "pilote_e\u0301te\u0301"])
def test_unicode_labels_are_allowed_and_nfc(tmp_path, label):
    import unicodedata

    cfg = load_config(write(tmp_path, f"sources: [{{path: a.mp4, label: '{label}'}}]\n"))
    assert cfg.sources[0].label == unicodedata.normalize("NFC", label)


def test_tilde_means_home_in_config_paths(tmp_path):
    cfg = load_config(write(tmp_path, "output: ~/x\ndetect: {weights: ~/w.onnx}\n"
                                      "sources: [{path: ~/v.mp4}]\n"))
    home = str(Path.home())
    assert str(cfg.output_dir) == f"{home}/x"
    assert cfg.detect.weights == f"{home}/w.onnx" and cfg.sources[0].path == f"{home}/v.mp4"


@pytest.mark.parametrize("url", ["https://www.youtube.com/watch?v=dQw4w9WgXcQ", "http://127.0.0.1:8/a.mp4",
                                 "ytsearch20:fighter pilot cockpit", "ytsearch:x", "ytsearchdate5:x",
                                 "scsearchall:x"])
def test_urls_and_searches_yt_dlp_takes(url):
    from pipeline.config.load import parse_config

    assert parse_config({"sources": [{"url": url}]}).sources[0].url == url


def test_yaml_off_is_off(tmp_path):
    """YAML 1.1 reads a bare off as false: the documented `tiles: off` must mean off."""
    cfg = load_config(write(tmp_path, "sources: [{path: a.mp4}]\ndetect: {tiles: off, upscale: off}\n"))
    assert (cfg.detect.tiles, cfg.detect.upscale) == ("off", "off")
    cfg = load_config(write(tmp_path, "sources: [{path: a.mp4}]\ndetect: {tiles: auto, upscale: 2}\n"))
    assert (cfg.detect.tiles, cfg.detect.upscale) == ("auto", 2.0)


def test_defaults_follow_the_detector_class_unless_set(tmp_path):
    faces = load_config(write(tmp_path, "sources: [{path: a.mp4}]\n"))
    assert (faces.detect.min_size, faces.detect.max_per_frame, faces.detect.upscale) == (0, 50, "off")
    assert faces.crop.aspect == 1.0
    people = load_config(write(tmp_path, "sources: [{path: a.mp4}]\ndetect: {model: ssdlite-person}\n"))
    assert (people.detect.max_per_frame, people.crop.aspect) == (100, 0.4)
    assert people.crop.size == 224 and people.crop.padding.top == 0.3  # shared defaults stay
    given = load_config(write(tmp_path, "sources: [{path: a.mp4}]\n"
                                        "detect: {model: ssdlite-person, max_per_frame: 7}\n"
                                        "crop: {aspect: null, size: 128}\n"))
    assert (given.detect.max_per_frame, given.crop.aspect, given.crop.size) == (7, None, 128)
    # tracks: people wait longer and keep weak boxes that continue a track; a key the config sets
    # keeps the class's other track defaults
    assert (faces.detect.track.max_missed, faces.detect.track.low_score, faces.detect.track.lost_s) \
        == (5, None, 0)
    assert (people.detect.track.max_missed, people.detect.track.low_score,
            people.detect.track.lost_s) == (10, 0.4, 1.2)
    tuned = load_config(write(tmp_path, "sources: [{path: a.mp4}]\n"
                                        "detect: {model: ssdlite-person, track: {min_iou: 0.2}}\n"))
    assert (tuned.detect.track.min_iou, tuned.detect.track.max_missed, tuned.detect.track.low_score) \
        == (0.2, 10, 0.4)
    off = load_config(write(tmp_path, "sources: [{path: a.mp4}]\n"
                                      "detect: {model: ssdlite-person, track: {low_score: null}}\n"))
    assert off.detect.track.low_score is None


def test_validate_rejects_a_missing_reference_photo(tmp_path):
    """A missing photo stops a run before any stage: validate refuses it as the run would."""
    cfg = write(tmp_path, "sources: [{path: here.mp4}]\n"
                          "identity: {references: {ling: [here.jpg], wei: [gone.jpg]}}\n")
    (tmp_path / "here.mp4").touch()
    (tmp_path / "here.jpg").touch()
    res = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(cfg)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2, res.stdout
    assert "identity.references.wei: no such file: gone.jpg" in res.stderr
    assert "here.jpg" not in res.stderr and res.stdout == ""
