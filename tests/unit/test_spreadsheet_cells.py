"""CSV files are opened in spreadsheets: text that came from a video site (a title, an uploader,
an error message) must not become a formula there, and numbers must stay numbers."""
from __future__ import annotations

import csv
import io

import pytest

from pipeline.core.records import MANIFEST_COLUMNS
from pipeline.runner.availability import Row
from pipeline.runner.availability import csv_text as availability_csv
from pipeline.steps.manifest import csv_text as manifest_csv

HOSTILE = ['=HYPERLINK("http://127.0.0.1/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3",
           "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("title", HOSTILE)
def test_a_hostile_title_is_text_in_the_manifest_csv_and_numbers_stay_numbers(title):
    row = {"crop_id": "a_000000000_0", "title": title, "uploader": "=cmd", "license": "ok",
           "score": -0.25, "t_s": 1.5, "track_id": 3}
    [read] = cells(manifest_csv([row], MANIFEST_COLUMNS))
    assert read["title"] == "'" + title.replace("\r", "\n")
    assert read["uploader"] == "'=cmd"
    assert (read["license"], read["score"], read["t_s"], read["track_id"]) == ("ok", "-0.25", "1.5", "3")


def test_a_carriage_return_inside_a_title_does_not_split_the_row():
    row = {"crop_id": "a_000000000_0", "title": "one\rtwo\r\nthree", "score": 0.5}
    [read] = cells(manifest_csv([row], MANIFEST_COLUMNS))
    assert (read["title"], read["score"]) == ("one\ntwo\nthree", "0.5")


def test_a_hostile_title_and_message_are_text_in_availability_csv():
    row = Row(source_id="youtube-x", entry="sources.0", url="https://127.0.0.1/watch?v=x",
              title=HOSTILE[0], state="failed", reason="@reason", message="-msg")
    [read] = cells(availability_csv([row]))
    assert (read["title"], read["reason"], read["message"]) == ("'" + HOSTILE[0], "'@reason", "'-msg")
    assert (read["source_id"], read["url"], read["state"]) == ("youtube-x", "https://127.0.0.1/watch?v=x",
                                                               "failed")
