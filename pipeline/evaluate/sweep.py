"""``evaluate --sweep KEY=V1,V2``: the config run and scored once per setting (every combination
of the swept values), a row each with its scores and its cost in ms a frame.

Each setting runs into a folder of its own, ``<output>/sweep/<setting>/``, first filled with hard
links of the run's downloaded videos, frames, detections, crops and stage markers (a copy where
links cannot be made). The run's resume rule then redoes only what the setting changes: the
stages from the first one whose fingerprint differs (``detect.min_score`` redoes detect and
crop, ``crop.min_size`` only crop, ``sample.every`` everything but the download). That first
stage is found by the stages' own fingerprints and forced for every setting, also for one whose
values equal the run's, so every row's cost measures the same stages, timed in this sweep. A
setting folder left by an earlier sweep is reused: its markers tell what is still valid.

Pipeline writes never modify a file in place (they write a new file and rename it over the old
one), so the links never change the run's own files.
"""
from __future__ import annotations

import copy
import itertools
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.load import parse_config
from ..config.schema import Config
from ..io.yamlfile import ConfigError
from ..state.lock import RunLock
from ..state.ownership import check_output, identity_of
from ..sources.expand import expand_sources
from ..stages import NAMES, Context, active
from ..state.markers import State
from ..io.yamlfile import load_yaml
from .evaluation import evaluate, write_evaluation
from ..runner.run import run
from ..runner.status import offline_expander

SWEEP_DIR = "sweep"
SEEDED = ("videos", "frames", "detections", "crops", "state")
"""What a setting folder starts from: the per-source stages' outputs and their markers."""


class SweepError(ValueError):
    """A --sweep option that cannot be applied; the message names it."""


@dataclass(frozen=True)
class Setting:
    """One combination: (dotted key, value) pairs, as they were written."""

    changes: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.changes)

    @property
    def folder(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", "_".join(f"{k}={v}" for k, v in self.changes))


def parse_sweeps(specs: Sequence[str]) -> list[Setting]:
    """``KEY=V1,V2`` options into every combination of their values (first option slowest)."""
    axes = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not parts:
            raise SweepError(f"--sweep {spec}: write KEY=VALUE[,VALUE...], e.g. detect.min_score=0.4,0.5")
        axes.append([(key.strip(), v) for v in parts])
    return [Setting(tuple(combo)) for combo in itertools.product(*axes)]


def with_setting(raw: dict[str, Any], setting: Setting, output: Path) -> dict[str, Any]:
    """The config document with the setting's keys set (values read as YAML reads them, so
    ``off`` and ``0.5`` mean what they mean in the file) and its own output folder."""
    doc = copy.deepcopy(raw)
    for key, value in setting.changes:
        *parents, last = key.split(".")
        node = doc
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise SweepError(f"--sweep {key}: {p} is not a section of the config")
            node = child
        node[last] = load_yaml(value)
    doc["output"] = str(output)
    return doc


def setting_config(raw: dict[str, Any], setting: Setting, output: Path) -> Config:
    try:
        return parse_config(with_setting(raw, setting, output))
    except ConfigError as exc:
        raise SweepError(f"--sweep {setting.name}: {'; '.join(exc.problems)}") from None


def first_changed(base: Config, other: Config, root: Path) -> str | None:
    """The earliest stage whose fingerprint differs between the two configs for any source of
    the run (None: the same work); a fingerprint that cannot be computed counts as changed."""
    videos = expand_sources(base, State(root), expander=offline_expander).videos
    base_stages = {s.name: s for s in active(base)}
    earliest = len(NAMES)
    for video in videos:
        up_b = up_o = ""
        for stage in active(other):
            b = base_stages.get(stage.name)
            try:
                fp_b = b.fingerprint(Context(video, base, root), up_b) if b else None
                fp_o = stage.fingerprint(Context(video, other, root), up_o)
            except Exception:
                fp_b, fp_o = None, ""
            if fp_b != fp_o:
                earliest = min(earliest, NAMES.index(stage.name))
                break
            up_b, up_o = fp_b, fp_o
    return NAMES[earliest] if earliest < len(NAMES) else None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def seed(base_root: Path, root: Path, name: str, config_file: str | None) -> None:
    """A new setting folder claimed for the config and filled from the run (see the module doc);
    an existing one is left as it is. yt-dlp's ``.part`` files are not linked: they grow in place."""
    if root.exists():
        return
    claim = check_output(root, identity_of(name, config_file, root))
    root.mkdir(parents=True)
    claim.write(lambda _m: None)
    if not (base_root / "state").is_dir():  # the config never ran: the setting starts afresh
        return
    with RunLock(base_root):
        for folder in SEEDED:
            if (base_root / folder).is_dir():
                shutil.copytree(base_root / folder, root / folder, copy_function=_link_or_copy,
                                ignore=shutil.ignore_patterns("*.part", ".*.tmp"))


def ms_per_frame(root: Path, stages: Sequence[str]) -> float | None:
    """Seconds the ``stages`` took over every source (their markers), per sampled frame."""
    state = State(root)
    seconds, frames = 0.0, 0
    for marker_path in (state.dir / "sample").glob("*.json"):
        if marker_path.name.endswith(".error.json"):
            continue
        sid = marker_path.stem
        sample = state.read("sample", sid)
        frames += sample.result.get("frames", 0) if sample else 0
        seconds += sum(m.seconds for m in (state.read(s, sid) for s in stages) if m is not None)
    return round(1000 * seconds / frames, 1) if frames else None


@dataclass(frozen=True)
class SweepRow:
    setting: Setting
    result: dict[str, Any]
    ms_per_frame: float | None
    failed: int


def sweep(config_file: str, base: Config, truth_files: Sequence[Path], settings: Sequence[Setting],
          log: Callable[[str], None]) -> tuple[list[SweepRow], str | None]:
    """Run and score every setting; returns the rows and the first stage they redo."""
    raw = load_yaml(Path(config_file).read_text(encoding="utf-8"))
    base_root = base.output_dir.absolute()
    configs = [(s, setting_config(raw, s, base_root / SWEEP_DIR / s.folder)) for s in settings]
    changed = [first_changed(base, cfg, base_root) for _, cfg in configs]
    start = min((c for c in changed if c is not None), key=NAMES.index, default=None)
    timed = NAMES[NAMES.index(start):] if start else NAMES[NAMES.index("sample"):]
    rows = []
    for i, (setting, cfg) in enumerate(configs, 1):
        log(f"setting {i}/{len(configs)}: {setting.name}")
        root = cfg.output_dir.absolute()
        seed(base_root, root, cfg.name, config_file)
        # the run's own warnings (empty splits, ...) were the user's already: not once a setting
        report = run(cfg, force=(start,) if start else (), progress=False, log=lambda _m: None,
                     config_file=config_file)
        result = evaluate(root, truth_files)
        write_evaluation(root, result)
        rows.append(SweepRow(setting, result, ms_per_frame(root, timed), len(report.failed)))
    return rows, start
