"""The rules behind filters and the availability report, checked directly: the Creative Commons
forms sites write, and the state a recorded failure reads as (whatever its class)."""
from __future__ import annotations

import pytest

from pipeline.config.filter import Filter
from pipeline.runner.availability import Fate, judge


@pytest.mark.parametrize("licence, passes", [
    ("Creative Commons Attribution license (reuse allowed)", True),  # YouTube
    ("by", True), ("by-nc-sa", True), ("cc0", True),  # Vimeo
    ("CC BY-SA 4.0", True), ("https://creativecommons.org/licenses/by/3.0/", True),  # archive.org
    ("Standard YouTube License", False), ("All rights reserved", False), ("bypass", False),
    (None, False),  # a site that gives no licence: no video passes
])
def test_creative_commons_in_the_forms_sites_write_it(licence, passes):
    video_filter = Filter(license="creative-commons").compiled()
    reason = video_filter.reason({"license": licence})
    assert (reason is None) == passes, reason


@pytest.mark.parametrize("error_class, message, state, why", [
    ("unavailable", "[youtube] x: Private video. Sign in if you've been granted access", "unavailable",
     "private"),
    ("geo-or-bot-check", "[youtube] x: Sign in to confirm your age", "unavailable", "age"),
    ("geo-or-bot-check", "[youtube] x: Sign in to confirm you're not a bot", "blocked", "bot-check"),
    ("blocked", "[youtube] x: HTTP Error 429: Too Many Requests", "blocked", "rate-limited"),
    ("blocked", "the site said no", "blocked", "blocked"),  # a class of its own, however worded
    ("unavailable", "HTTP Error 403: Forbidden", "unavailable", "unavailable"),
    ("network", "timed out", "failed", "download: network"),
    ("a-class-added-later", "something", "failed", "download: a-class-added-later"),
])
def test_a_failure_reads_as_its_marker_says_whatever_its_class(error_class, message, state, why):
    assert judge(Fate(False, "download", error_class, message)) == (state, why)
