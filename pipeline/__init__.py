"""Turn videos into a labelled image dataset of face or person crops (see README.md).

The library API, for a notebook or a script (the command line wraps the same functions)::

    import pipeline
    config = pipeline.load_config("configs/demo.yaml")
    pipeline.plan(config)      # what a run would do: videos, frames, time and disk
    report = pipeline.run(config)
    pipeline.status(config)    # per stage: done, failed, pending

Importing ``pipeline`` imports none of them (``python -m pipeline --help`` starts without the
runner) and changes nothing in the environment; each is imported on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

# name: (module, attribute)
_API = {"run": ("pipeline.runner.run", "run"), "status": ("pipeline.runner.status", "status"),
        "plan": ("pipeline.runner.plan", "make_plan"), "load_config": ("pipeline.config.load", "load_config")}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    module, attribute = _API[name]
    return getattr(importlib.import_module(module), attribute)
