"""A YouTube-like site on the tests' local HTTP server (tests/httpserver.py), as a yt-dlp
extractor plugin: yt-dlp loads it when ``tests/sites`` is on ``sys.path`` (the tests put it on
the CLI's PYTHONPATH). It answers ``http://127.0.0.1:PORT/tube/...`` only.

- ``/tube/watch/<id>``: a video. Its page is ``/tube/api/<id>.json``: ``title``, ``license``,
  ``duration``, ``view_count``, ``upload_date``, ``uploader`` and ``media`` (the file's path on
  the server); or ``error``: ``private``, ``removed``, ``geo``, ``age`` or ``bot``, raised with
  YouTube's own words. An HTTP error of the page (429) is raised as yt-dlp raises it.
- ``/tube/list/<name>``: a playlist (``/tube/api/list-<name>.json``: ``title``, ``entries``),
  listed flat as YouTube's are: each entry's id, title, duration and view count; no licence, no
  upload date.
"""
from __future__ import annotations

from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import ExtractorError

_SITE = r"https?://127\.0\.0\.1:(?P<port>\d+)/tube"

MESSAGES = {
    "private": "Private video. Sign in if you've been granted access to this video",
    "removed": "Video unavailable. This video has been removed by the uploader",
    "age": "Sign in to confirm your age. This video may be inappropriate for some users.",
    "bot": "Sign in to confirm you're not a bot. Use --cookies-from-browser or --cookies for "
           "the authentication.",
}
FIELDS = ("license", "duration", "view_count", "upload_date", "uploader")


class LocalTubeIE(InfoExtractor):
    IE_NAME = "localtube"
    _VALID_URL = _SITE + r"/watch/(?P<id>[\w-]+)$"

    def _real_extract(self, url):
        port, video_id = self._match_valid_url(url).group("port", "id")
        server = f"http://127.0.0.1:{port}"
        page = self._download_json(f"{server}/tube/api/{video_id}.json", video_id)
        error = page.get("error")
        if error == "geo":
            self.raise_geo_restricted("The uploader has not made this video available in your country")
        if error:
            raise ExtractorError(MESSAGES[error], expected=True, video_id=video_id)
        return {"id": video_id, "title": page["title"], "url": server + page["media"], "ext": "mp4",
                **{k: page[k] for k in FIELDS if k in page}}


class LocalTubePlaylistIE(InfoExtractor):
    IE_NAME = "localtube:playlist"
    _VALID_URL = _SITE + r"/list/(?P<id>[\w-]+)$"

    def _real_extract(self, url):
        port, list_id = self._match_valid_url(url).group("port", "id")
        site = f"http://127.0.0.1:{port}/tube"
        page = self._download_json(f"{site}/api/list-{list_id}.json", list_id)
        entries = [self.url_result(f"{site}/watch/{e['id']}", LocalTubeIE, e["id"], e.get("title"),
                                   duration=e.get("duration"), view_count=e.get("view_count"))
                   for e in page["entries"]]
        return self.playlist_result(entries, list_id, page.get("title"))
