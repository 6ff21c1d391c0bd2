"""The config's ``identity`` section: who is in the crops (dlib or SFace vectors), with the
measured default thresholds."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .fields import Label, Model, PositiveInt, at_least, between


class PerPerson(Model):
    """Keep the ``max`` best crops (by ``quality``) of each person across the whole run, at least
    ``min_gap_s`` seconds apart within a source (pipeline/identity.py)."""

    max: PositiveInt
    min_gap_s: Annotated[float, at_least(0)] = 0.0


IDENTITY_MAX_DISTANCE = {"dlib": 0.4, "sface": 0.637}


IDENTITY_MIN_FACE = 20.0


class Identity(Model):
    """Who is in the crop (pipeline/identity.py): a face embedding per kept face crop, clusters
    of one person across the whole run, and names from reference photos.

    ``max_distance``: the average distance between the crops of two tracks under which they are
    one person: euclidean for dlib, cosine for sface (``IDENTITY_MAX_DISTANCE``).
    ``min_face``: a face narrower than this (pixels of the detection box) is too small to tell
    who it is; it gets no cluster (``identity_skip: small``) rather than a cluster of strangers.
    Neither it nor ``references`` nor ``keep`` is part of a stage fingerprint: re-tuning them
    recomputes no embedding."""

    model: Literal["dlib", "sface"] = "dlib"
    max_distance: Annotated[float, between(0.05, 2)] = 0.4  # per model: IDENTITY_MAX_DISTANCE
    min_face: Annotated[float, at_least(0)] = IDENTITY_MIN_FACE
    references: dict[Label, list[str]] = Field(default_factory=dict)
    keep: Literal["all", "references"] = "all"
    per_person: PerPerson | None = None

    @model_validator(mode="before")
    @classmethod
    def _model_default(cls, data: Any) -> Any:
        """``max_distance`` unset: the model's own (its vectors are compared its own way)."""
        if isinstance(data, dict) and "max_distance" not in data \
                and data.get("model", "dlib") in IDENTITY_MAX_DISTANCE:
            return {**data, "max_distance": IDENTITY_MAX_DISTANCE[data.get("model", "dlib")]}
        return data

    @model_validator(mode="after")
    def _keep_needs_references(self) -> Identity:
        if self.keep == "references" and not self.references:
            raise ValueError("keep: references needs at least one entry under references")
        for name, photos in self.references.items():
            if not photos:
                raise ValueError(f"references.{name}: give at least one photo")
        return self
