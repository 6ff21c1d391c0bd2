"""Loading a config: YAML read safely, validated by the schema, every error one line naming its
key path and line."""
from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..io.yamlfile import ConfigError, load_yaml, locate
from .fields import stem_label
from .schema import Config


_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false",
               "str": "text", "string": "text", "dict": "a mapping", "tuple": "a list", "list": "a list",
               "model": "a mapping of its keys"}


def _message(err: Mapping[str, Any]) -> str:
    """pydantic's error in the words a config user needs."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        want = _TYPE_WORDS.get(kind.split("_")[0], kind.split("_")[0])
        got = type(err.get("input")).__name__
        return f"must be {want} (got {got} {err.get('input')!r})"
    if kind == "finite_number":
        return f"must be a finite number (got {err.get('input')})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"]


def _format_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f".{part}" if out else str(part)
        elif (part in ("function-after[_check_label()]",)
              or str(part).startswith(("function-", "tagged-union"))):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys allowed at the parent of ``loc`` (for 'unknown key' hints)."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        for candidate in getattr(ann, "__args__", ()) or (ann,):
            inner = getattr(candidate, "__args__", None)
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
            if inner:
                found = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
                if found:
                    model = found[0]
                    break
        else:
            return []
    return [f.alias or name for name, f in getattr(model, "model_fields", {}).items()]


def parse_config(data: Any, text: str = "", file: str | None = None, name: str | None = None) -> Config:
    """Validate an already-parsed document (``text`` only serves line numbers in errors);
    ``name`` is the run name when the document gives none (else the schema's ``run``)."""
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping with at least 'sources'"], file)
    located = locate(text)
    try:
        return Config.model_validate(data if name is None else {"name": name, **data})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = _message(err)
            if err["type"] == "extra_forbidden":
                allowed = _allowed_keys(loc)
                if allowed:
                    msg += f" (allowed: {', '.join(allowed)})"
            nested = re.match(r"^((?:sources|[a-z_]+)(?:\.\w+)*): (.*)$", msg) if not loc else None
            if nested:  # a whole-config check that names its own key path
                loc = tuple(int(p) if p.isdigit() else p for p in nested.group(1).split("."))
                msg = nested.group(2)
            line = located.line_of(loc)
            problems.append(f"{_format_path(loc)}: {msg}" + (f" (line {line})" if line else ""))
        raise ConfigError(problems, file) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file; raises ``ConfigError`` naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found: {path}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {path}: {exc}"]) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError([f"not valid YAML: {getattr(exc, 'problem', exc)}{where}"], str(path)) from None
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(path)) from None
    except RecursionError:
        raise ConfigError(["nested too deeply to be a config"], str(path)) from None
    return parse_config(data, text, str(path), name=default_name(path))


def default_name(path: Path) -> str | None:
    """The run name of a config without ``name:``: its file's name without the extension
    (``configs/pilots.yaml`` -> ``pilots``, output ``data/pilots``), so two configs in one
    working folder do not both claim ``data/run``. The file a link leads to names it, as it
    identifies the config (``state/ownership.py``), so ``/dev/stdin`` fed from ``pilots.yaml``
    is ``pilots`` too; a pipe (stdin, ``<(...)``) or a stem that is no label gives None."""
    real = path.expanduser().resolve()
    return stem_label(real.stem) if real.is_file() else None
