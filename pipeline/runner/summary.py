"""What a run reports: its outcome per source and the dataset (``RunReport``), and
``summary.json``."""
from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.schema import Config
from ..exec.signals import exit_code
from ..steps.dataset import DatasetReport
from .unit import SourceOutcome, active_stages


@dataclass
class RunReport:
    root: Path
    outcomes: list[SourceOutcome]
    dataset: DatasetReport | None
    seconds: float
    interrupted: bool = False
    signum: int = signal.SIGINT  # what interrupted it: SIGINT (Ctrl-C), SIGTERM or SIGHUP
    sheets: Any = None  # pipeline.review.sheets.SheetReport, None when not built

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        """0 all sources done, 1 some failed (2 is the CLI's usage error); interrupted: 128 +
        the signal, as a shell reports it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
        if self.interrupted:
            return exit_code(self.signum)
        return 1 if self.failed else 0


def summary_of(config: Config, report: RunReport) -> dict[str, Any]:
    """``summary.json``: counts per stage, label and split; failures; timings."""
    stages = {s: {"ran": 0, "skipped": 0, "failed": 0} for s in active_stages(config)}
    for o in report.outcomes:
        for stage, how in o.stages.items():
            stages[stage][how] += 1
    ds = report.dataset
    return {
        "name": config.name,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(report.seconds, 2),
        "sources": {"total": len(report.outcomes), "done": sum(o.ok for o in report.outcomes),
                    "failed": len(report.failed)},
        "stages": stages,
        "stage_seconds": {s: round(sum(o.seconds.get(s, 0.0) for o in report.outcomes), 2)
                          for s in active_stages(config)},
        "frames": sum(o.counts.get("frames", 0) for o in report.outcomes),
        "dropped_blurry": sum(o.counts.get("dropped_blurry", 0) for o in report.outcomes),
        "detections": sum(o.counts.get("detections", 0) for o in report.outcomes),
        "crops": {"total": len(ds.rows) if ds else 0, "kept": ds.kept if ds else 0,
                  "rejected": ds.rejected if ds else 0,
                  "dropped": sum(ds.dropped.values()) if ds else 0,
                  "dropped_by_reason": ds.dropped if ds else {},  # duplicate, blurry, per_track, ...
                  "tracks": ds.tracks if ds else 0,
                  "per_label": dict(sorted((ds.per_label if ds else {}).items())),
                  "per_split": dict(sorted((ds.per_split if ds else {}).items()))},
        "failed": [{"source_id": o.sid, "stage": o.failed_stage, "class": o.error_class,
                    "message": o.message} for o in report.failed],
        "rejects": {"file": str(ds.rejects_file) if ds and ds.rejects_file else None,
                    "unknown": len(ds.unknown_rejects) if ds else 0},
        "sheets": str(report.sheets.index.relative_to(report.root)) if report.sheets else None,
        **({"identity": ds.identity} if ds and ds.identity is not None else {}),
    }
