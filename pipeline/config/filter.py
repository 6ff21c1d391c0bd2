"""The ``filter`` of a source and of ``download``: which listed videos a run takes, by their
yt-dlp metadata (``pipeline.core.filters`` evaluates it)."""
from __future__ import annotations

import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, model_validator

from ..core.filters import VideoFilter, from_fields, parse_expression
from .fields import Model, Time, at_least


def _day(v: Any) -> str:
    """A day as yt-dlp's ``upload_date`` (``YYYYMMDD``): YAML's date (``2020-01-01`` unquoted),
    or the text ``2020-01-01`` / ``20200101``."""
    text = v.isoformat() if isinstance(v, datetime.date) else v
    if isinstance(text, str):
        digits = text.strip().replace("-", "")
        try:
            datetime.datetime.strptime(digits, "%Y%m%d")
            return digits
        except ValueError:
            pass
    raise ValueError(f"must be a day such as 2020-01-01 (got {v!r})")


def _filter(v: Any) -> Any:
    """A bare string is yt-dlp's match filter as it is: ``{match: STRING}``."""
    if isinstance(v, str):
        return {"match": v}
    if not isinstance(v, dict):
        raise ValueError("must be a yt-dlp match filter (text) or a mapping such as "
                         "{license: creative-commons, max_duration: 600}")
    return v


def _licence_text(v: str) -> str:
    """Licence text goes into a quoted yt-dlp condition: no quotes, ``&`` or backslash."""
    if not v.strip() or set(v) & set("'\"&\\"):
        raise ValueError("give creative-commons, or text without quotes, '&' or '\\'")
    return v


def _match(v: str) -> str:
    parse_expression(v)
    return v


class Filter(Model):
    """Which listed videos a run takes (``pipeline.core.filters``); every condition given must hold.
    ``license: creative-commons`` matches the Creative Commons forms sites use; other text is
    looked for in the licence, ignoring case."""

    license: Annotated[str, AfterValidator(_licence_text)] | None = None
    min_duration: Time | None = None
    max_duration: Time | None = None
    min_views: Annotated[int, at_least(0)] | None = None
    uploaded_after: Annotated[str, BeforeValidator(_day)] | None = None
    uploaded_before: Annotated[str, BeforeValidator(_day)] | None = None
    match: Annotated[str, AfterValidator(_match)] | None = None  # yt-dlp's own syntax

    @model_validator(mode="after")
    def _some(self) -> Filter:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("give at least one condition (license, min_duration, max_duration, "
                             "min_views, uploaded_after, uploaded_before, match)")
        return self

    def compiled(self) -> VideoFilter:
        """The ``pipeline.core.filters.VideoFilter`` these keys stand for."""
        return from_fields(**self.model_dump())


FilterSpec = Annotated[Filter, BeforeValidator(_filter)]
