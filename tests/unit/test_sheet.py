"""Contact sheet layout, the review page's data and rejects files (the sheets of a run:
tests/e2e/test_sheet.py)."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.steps.rejects import apply_rejects, read_rejects
from pipeline.review.draw import MAX_PIXELS, MAX_SIDE, layout_for
from pipeline.review.rows import format_time, page_names, short_ids, source_link
from pipeline.review.page import json_for_script, render_index


# ----------------------------------------------------------------------------- pure parts

def test_the_bundled_font_is_truetype_and_antialiased():
    font = ImageFont.load_default(size=14)
    assert isinstance(font, ImageFont.FreeTypeFont), "Pillow without FreeType: sheets need >= 10.1"
    im = Image.new("L", (200, 24), 255)
    ImageDraw.Draw(im).text((2, 2), "hopper_pan 01:05 0.94", font=font, fill=0)
    levels = set(np.asarray(im).ravel().tolist())
    assert len(levels - {0, 255}) > 50, "text edges must have intermediate grey levels"


def test_format_time():
    assert format_time(0) == "00:00"
    assert format_time(65.9) == "01:05"
    assert format_time(64.9999999) == "01:05"  # t_s rounding noise does not go back a second
    assert format_time(3725) == "1:02:05"


def test_short_ids_are_short_and_unique():
    short = short_ids(["youtube-dQw4w9WgXcQ", "file-hopper_pan-200fdbc6", "vimeo-12345",
                       "file-clip-aaaa1111", "file-clip-bbbb2222"])
    assert short["youtube-dQw4w9WgXcQ"] == "dQw4w9WgXcQ"
    assert short["file-hopper_pan-200fdbc6"] == "hopper_pan"
    assert short["vimeo-12345"] == "12345"
    assert short["file-clip-aaaa1111"] == "clip~aaaa" and short["file-clip-bbbb2222"] == "clip~bbbb"


def test_source_links_open_the_video_at_the_crop():
    assert source_link("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=x", 65.7) == \
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=65s"
    assert source_link("https://youtu.be/dQw4w9WgXcQ", 3) == "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=3s"
    assert source_link("file:///data/v/a%20b.mp4", 1.5) == "file:///data/v/a%20b.mp4#t=1.5"
    assert source_link("https://example.org/v.mp4", 9) == "https://example.org/v.mp4"
    assert source_link("javascript:alert(1)", 1) is None
    assert source_link("", 1) is None and source_link(None, 1) is None


def test_page_names_never_collide():
    names = page_names({"hopper": 3, "hopper-2": 1, "a": 1})
    assert names[("hopper", 1)] == "hopper.jpg" and names[("hopper", 3)] == "hopper-3.jpg"
    assert names[("hopper-2", 1)] == "hopper-2.jpg" and names[("hopper", 2)] == "hopper~2.jpg"
    assert len(set(names.values())) == len(names)


def test_rejects_file_is_read_tolerantly(tmp_path):
    f = tmp_path / "rejects.txt"
    f.write_bytes("\ufeff# saved by the page\r\n\r\n  a_000000500_0  \r\nb_000001000_1 # blurry\n"
                  "crops/s/c_000002000_0.jpg\n\na_000000500_0\n   # only a comment\n".encode())
    assert read_rejects(f) == ["a_000000500_0", "b_000001000_1", "c_000002000_0"]
    rows = [{"crop_id": "a_000000500_0", "status": "kept", "dataset_file": "dataset/x"},
            {"crop_id": "z", "status": "kept", "dataset_file": "dataset/z"}]
    assert apply_rejects(rows, read_rejects(f)) == ["b_000001000_1", "c_000002000_0"]
    assert rows[0]["status"] == "rejected" and rows[0]["dataset_file"] is None
    assert rows[1]["status"] == "kept"


def test_json_in_script_cannot_close_or_confuse_the_block():
    hostile = {"title": "</script><script>alert(1)</script><!--<script>", "u": "a & b > c\u2028"}
    text = json_for_script(hostile)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == hostile


def test_layout_never_makes_an_image_too_big_to_open():
    for columns, thumb, per in [(50, 512, 100000), (1, 32, 100000), (10, 128, 300), (50, 32, 5)]:
        layout = layout_for(columns, thumb, per)
        w, h = layout.size(layout.per_page)
        assert w <= MAX_SIDE and h <= MAX_SIDE and w * h <= MAX_PIXELS, (columns, thumb, per)
        assert 1 <= layout.per_page <= per
    assert layout_for(10, 128, 300).per_page == 300  # the common case is not cut


# ----------------------------------------------------------------------------- sheet images

def test_page_data_escapes_outside_strings(tmp_path):
    rows = [{"crop_id": "s_000001000_0", "file": "crops/s/s_000001000_0.jpg", "label": "x",
             "split": "train", "source_id": "youtube-abcdefghijk", "t_s": 1.0, "score": 0.9,
             "title": "<script>alert(1)</script>", "uploader": "<b>me</b>",
             "source_url": "javascript:alert(2)", "status": "kept"}]
    page = render_index(rows, "r<&>", "2000-01-01")
    assert "<script>alert(1)" not in page and "<b>me</b>" not in page
    assert "<title>r&lt;&amp;&gt; · crops review</title>" in page
    data = page.split('id="data">', 1)[1].split("</script>", 1)[0]
    parsed = json.loads(data)
    assert parsed["sources"][0]["title"] == "<script>alert(1)</script>"
    assert parsed["crops"][0]["link"] is None  # a javascript: URL never becomes a link
    assert page.count("<script") == 2


# ----------------------------------------------------------------------------- rejects in a run


def test_thumbnails_come_in_row_order_whatever_the_threads(tmp_path):
    """Read several at a time, each row still gets its own crop's thumbnail, and a crop gone or
    not an image is None (drawn as 'missing'), not an error."""
    from PIL import Image

    from pipeline.review.draw import thumbnails

    rows = []
    for i in range(24):
        name = f"c{i}.png"
        if i % 7 == 3:
            (tmp_path / name).write_bytes(b"not a jpeg")
        elif i % 7 != 5:  # i % 7 == 5: never written
            Image.new("RGB", (40 + 10 * i, 200), (10 * i, 255 - 10 * i, 7)).save(tmp_path / name)
        rows.append({"file": name})
    one = list(thumbnails(tmp_path, rows, 64, 1))
    many = list(thumbnails(tmp_path, rows, 64, 4))
    assert [t is None for t in many] == [i % 7 in (3, 5) for i in range(24)]
    assert [None if t is None else (t.size, t.getpixel((0, 0))) for t in many] == \
           [None if t is None else (t.size, t.getpixel((0, 0))) for t in one]
    assert {max(t.size) for t in many if t is not None} == {64}
    assert many[0].getpixel((0, 0)) == (0, 255, 7) and many[11].getpixel((0, 0)) == (110, 145, 7)
