"""Failure classes from the messages yt-dlp and our own code really produce."""
from __future__ import annotations

import pytest
from yt_dlp.utils import DownloadError

from pipeline.core.errors import classify
from pipeline.video.probe import VideoError

CASES = [
    ("ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader",
     "unavailable"),
    ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access to this video",
     "unavailable"),
    ("ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies",
     "geo-or-bot-check"),
    ("ERROR: [youtube] abc: The uploader has not made this video available in your country",
     "geo-or-bot-check"),
    ("ERROR: [generic] gone: Unable to download webpage: HTTP Error 404: Not Found (caused by "
     "<HTTPError 404: Not Found>)", "unavailable"),
    ("ERROR: [generic] x: Unable to download webpage: HTTP Error 500: Internal Server Error",
     "network"),
    ("ERROR: \r[download] Got error: HTTPConnectionPool(host='127.0.0.1', port=5): Read timed out.",
     "network"),
    ("ERROR: \r[download] Got error: 100 bytes read, 133979 more expected. Giving up after 1 retries",
     "network"),
    ("ERROR: \r[download] Got error: Downloaded 200 bytes, expected 134079 bytes. Giving up after 1 "
     "retries", "network"),  # the same, from yt-dlp's urllib handler (no requests installed)
    ("ERROR: Unsupported URL: https://example.org/page", "not-a-video"),
]


@pytest.mark.parametrize("message,kind", CASES)
def test_download_errors(message, kind):
    got, text = classify(DownloadError(message))
    assert got == kind
    assert text and not text.startswith("ERROR") and "\r" not in text


def test_local_errors():
    assert classify(FileNotFoundError("no such file or folder: /x.mp4"))[0] == "not-found"
    assert classify(VideoError("/x.mp4: no decodable video frame"))[0] == "not-a-video"
    assert classify(RuntimeError(""))[1] == "RuntimeError"
