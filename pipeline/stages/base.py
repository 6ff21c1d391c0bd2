"""What a per-source stage is to the orchestration: a name, a version, a fingerprint, and a run
that returns the stage's own typed result.

``pipeline.runner.unit``, ``pipeline.runner.status`` and the run log loop over
``pipeline.stages.STAGES`` and know nothing else about a stage: a new stage is one module with
one ``Stage`` object and its result dataclass, added to that list. A stage's own functions keep
the parameters natural to it (``sample.run`` takes the parts the download left); its ``Stage``
object is where those are picked from the context and the earlier stages' results, which it
looks up by their type (``inputs[DownloadResult]``), never by a stage's name.

A result is a frozen dataclass that says how it is stored in its marker (``to_json`` and
``from_json``: the marker files of earlier versions are read back unchanged, so an old output
folder resumes without redoing work) and which counts the run log, ``summary.json`` and the
run report show (``counts``).

One pass may stand in for several stages' ``run``: ``pipeline.stages.FUSED`` declares it (the
sample, detect and crop stages run as one pipeline over the frames, giving the same outputs).

What ``plan`` estimates of a stage it asks the stage too: the unit its work is measured in
(``Stage.work``), how much of it a video has before any run (``Stage.expected``), how much a
result did (``Result.amounts``), and a figure for when no run recorded any (``Stage.benchmark``).
Its recorded seconds are then summed with those of the other stages measured in that unit.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from ..config.schema import Config
from ..core.records import Video


FRAMES = "frames"
"""The sampled frames: what a sampler's settings say before a run, timed per frame."""
FACES = "faces"
"""The faces (detections) the frames give, at the rate a measured or recorded frame gave them."""
DOWNLOADS = "downloads"
"""One a URL source: counted, not timed (a download's time is the host's)."""


@dataclass(frozen=True)
class Rate:
    """Seconds a unit of work takes, and where the figure comes from (``plan`` says it)."""

    seconds: float
    source: str


class Result(ABC):
    """A stage's result: what its marker records, read again by later stages and the run."""

    counted: ClassVar[tuple[str, ...]] = ()
    """The names of its int fields that ``counts`` reports (also when no source got this far:
    ``summary.json`` then says 0)."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The marker's ``result`` object (its keys and their order are the marker format)."""

    @classmethod
    @abstractmethod
    def from_json(cls: type[R], raw: dict[str, Any]) -> R:
        """The result a marker recorded (``to_json``'s inverse)."""

    def counts(self) -> dict[str, int]:
        """What the run log (the stage's line), ``summary.json`` (summed over sources) and
        ``status`` show of this result: its ``counted`` fields."""
        return {name: getattr(self, name) for name in self.counted}

    def busy(self) -> dict[str, float]:
        """The seconds each step of a fused pass (``Fused``) kept its thread busy, recorded by
        the pass's first stage; none by default."""
        return {}

    def facts(self) -> dict[str, str]:
        """What the run keeps of this result about its source besides counts: ``detector``
        (which model and backend found its boxes) and ``title`` (when the source had none)."""
        return {}

    def amounts(self) -> dict[str, int]:
        """The work this result records, by unit (``FRAMES`` kept, ``FACES`` found or embedded):
        ``plan`` divides the recorded seconds of the stages measured in a unit by the first of
        their results that counts it, and learns the faces a frame gives from the others."""
        return {}

    def video_file(self) -> str | None:
        """The file its source is read from, when this result put it on disk (a download);
        absolute or relative to the output folder. ``plan`` probes it for length and size."""
        return None


R = TypeVar("R", bound=Result)
T = TypeVar("T", bound=Result)

Produced = tuple[list[str], R]
"""What a stage's run returns: its outputs (paths relative to the output folder, each checked on
resume) and its result."""


class Results:
    """The results of a unit's earlier stages, looked up by their type."""

    def __init__(self) -> None:
        self._by_type: dict[type[Result], Result] = {}

    def add(self, result: Result) -> None:
        self._by_type[type(result)] = result

    def get(self, kind: type[T]) -> T | None:
        found = self._by_type.get(kind)
        return found if isinstance(found, kind) else None

    def __getitem__(self, kind: type[T]) -> T:
        found = self.get(kind)
        if found is None:
            raise LookupError(f"no {kind.__name__} among the earlier stages' results")
        return found

    def __iter__(self) -> Iterator[Result]:
        return iter(self._by_type.values())


@dataclass(frozen=True)
class Context:
    """What every stage of one unit (one video) is run with."""

    video: Video
    config: Config
    root: Path  # the output folder, absolute; outputs are recorded relative to it
    progress: bool = False  # draw progress bars (only when the unit runs in this process)


class Stage(ABC, Generic[R]):
    """One per-source stage. ``fingerprint`` and ``run`` may raise: the unit is then recorded
    as failed at this stage."""

    name: ClassVar[str]  # its folder under ``state/`` and its name in ``--force``, ``status``, summaries
    version: ClassVar[str]  # part of the fingerprint: bumping it redoes this stage and the later ones
    result: ClassVar[type[Result]]  # its result's type (R's class): how its marker is read back

    work: ClassVar[str | None] = None
    """What ``plan`` measures the stage's work in (``FRAMES``, ``FACES``, ``DOWNLOADS``); None:
    nothing it estimates."""

    def enabled(self, config: Config) -> bool:
        """Whether this config runs the stage (a disabled stage is not looped over at all)."""
        return True

    def has_work(self, video: Video) -> bool:
        """Whether the stage has work of its own for ``video``: ``plan`` lists only those as to
        do, so it shows what a run does for each kind of source (a local file is not downloaded)."""
        return True

    def expected(self, config: Config, video: Video, duration_s: float | None, frame_s: float
                 ) -> int | None:
        """How many units of its ``work`` ``video`` has before any run, for ``plan`` (``frame_s``:
        one frame's duration, 0 when unknown); None when it cannot tell, or another stage of the
        same unit says (the sampler knows the frames, the stages after it do not)."""
        return None

    def benchmark(self, config: Config) -> Rate | None:
        """Seconds a unit of its ``work`` takes when no earlier run recorded any (a benchmark
        figure); None when there is none."""
        return None

    def preload(self, config: Config) -> None:
        """Load what every unit of the stage needs (a detector's weights) once in the run's
        process, before the units start, so workers do not each fetch it; may raise (the
        stage's units then fail on their own)."""

    @abstractmethod
    def fingerprint(self, ctx: Context, upstream: str) -> str:
        """What the stage's outputs depend on, given the previous stage's fingerprint."""

    @abstractmethod
    def run(self, ctx: Context, inputs: Results) -> Produced[R]:
        """Write the outputs; ``inputs`` holds the earlier stages' results."""

    def read(self, raw: dict[str, Any]) -> R | None:
        """The result its marker recorded; None when that cannot be read (a hand-edited or
        damaged marker: the stage is then redone, as for a missing one)."""
        try:
            result = self.result.from_json(raw)
            ok = all(type(n) is int for n in result.counts().values())
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return result if ok else None  # type: ignore[return-value]  # a ClassVar cannot name R


@dataclass(frozen=True)
class Fused:
    """Several consecutive stages run as one pass (``run`` yields each one's ``Produced`` in
    ``covers`` order, once its outputs are in place) wherever ``applicable`` says that gives
    the same outputs as running them one after another. It starts when ``covers[0]`` runs."""

    covers: tuple[Stage[Any], ...]
    applicable: Callable[[Context, Results], bool]
    run: Callable[[Context, Results], Generator[Produced[Any], None, None]]

    def starts_at(self, stage: Stage[Any]) -> bool:
        return stage is self.covers[0]

    def includes(self, stage: Stage[Any]) -> bool:
        return any(stage is s for s in self.covers)
