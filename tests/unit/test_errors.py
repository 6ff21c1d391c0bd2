"""Failure classes from the messages yt-dlp and our own code really produce."""
from __future__ import annotations

import pytest
from yt_dlp.utils import DownloadError

from pipeline.core.errors import classify, error_record
from pipeline.video.probe import VideoError

CASES = [
    ("ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader",
     "unavailable"),
    ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access to this video",
     "unavailable"),
    # yt-dlp's texts (extractor/youtube/_video.py, extractor/generic.py, downloader/http.py)
    ("ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser or "
     "--cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ  for how "
     "to manually pass cookies", "blocked"),
    ("ERROR: [youtube] abc: This content isn't available, try again later. The current session "
     "has been rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to "
     "add a delay between video requests", "blocked"),
    ("ERROR: [youtube] abc: Video unavailable. YouTube is requiring a captcha challenge before "
     "playback", "blocked"),
    ("ERROR: [generic] Got HTTP Error 403 caused by Cloudflare anti-bot challenge; try again with "
     " --extractor-args \"generic:impersonate\"", "blocked"),
    ("ERROR: [generic] a: Unable to download webpage: HTTP Error 429: Too Many Requests (caused by "
     "<HTTPError 429: Too Many Requests>)", "blocked"),
    ("ERROR: unable to download video data: HTTP Error 429: Too Many Requests", "blocked"),
    ("ERROR: [youtube] abc: The uploader has not made this video available in your country",
     "restricted"),
    ("ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate for some "
     "users. Use --cookies-from-browser or --cookies for the authentication", "restricted"),
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


def test_credentials_in_messages_are_masked():
    """A proxy's password never reaches a message, the error record or its traceback lines."""
    exc = DownloadError("ERROR: [generic] a: Unable to download webpage: ('Unable to connect to "
                        "proxy http://ann:s3cret@10.0.0.7:3128 or socks5h://bob:pw@10.0.0.8:1080/', "
                        "NewConnectionError('Connection refused'))")
    kind, text = classify(exc)
    assert kind == "network"
    assert "http://***@10.0.0.7:3128" in text and "socks5h://***@10.0.0.8:1080/" in text
    record = error_record(exc, "download")
    assert "s3cret" not in str(record) and ":pw@" not in str(record)
