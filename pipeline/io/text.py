"""Text files people edit by hand (a rejects list, cluster names), read in any common encoding."""
from __future__ import annotations

import codecs


class TextError(ValueError):
    """A file that is not readable text; the message says how to save it."""


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data: bytes, name: str) -> str:
    """Text a person saved from any common editor: UTF-8 (with or without a BOM), UTF-16 or
    UTF-32 with a BOM (Windows Notepad's "Unicode"), else Windows-1252 (a superset of the
    printable Latin-1). Anything else (UTF-16 without a BOM, binary data) raises TextError."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    else:
        if b"\0" not in data:
            for encoding in ("utf-8", "cp1252"):
                try:
                    return data.decode(encoding)
                except UnicodeDecodeError:
                    continue
    raise TextError(f"{name} is not readable text (not UTF-8, UTF-16 with a BOM or "
                   "Windows-1252); save it as UTF-8")
