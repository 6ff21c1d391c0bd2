"""Names given to person clusters (``<output>/identities.txt``), read by the rules of a label.

Written by hand or by the review page, read by the identity step (``pipeline.steps.identity``):
each line names a cluster or a track.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ..config.fields import Named, label_clash, label_problem
from ..io.text import decode_text


NAMES_FILE = "identities.txt"  # names given to person clusters (pipeline.steps.identity)


class IdentityError(ValueError):
    """A reference photo that cannot be used (missing, unreadable, no face), or a names file
    line that is not ``<cluster> <name>`` with a valid label."""


def read_names(path: Path) -> dict[str, str]:
    """{cluster: name} from a names file (``parse_names``). Raises ``IdentityError`` naming the
    file and line when a name is not a valid label, or is another name of the file but for case
    or Unicode form (one folder on macOS and Windows)."""
    return {cluster: named.label for cluster, named in named_lines(path).items()}


def named_lines(path: Path, taken: Iterable[Named] = ()) -> dict[str, Named]:
    """``parse_names`` of the file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_names(decode_text(data, f"names file {path}"), str(path), taken)


def parse_names(text: str, where: str, taken: Iterable[Named] = ()) -> dict[str, Named]:
    """{cluster: its name and line} from the text of a names file: one ``<cluster> <name>`` a
    line (the name may hold spaces), blank lines and ``#`` comments ignored, a later line for a
    cluster wins. Raises ``IdentityError`` (``<where>:<line>: ...``) when a name is not a valid
    label or clashes with another (``taken``: the config's labels, checked before the file's
    own): the run checks the file it reads, the review server what a page posts, by the same
    rules."""
    names: dict[str, Named] = {}
    for n, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        cluster, *rest = item.split(maxsplit=1)
        name = unicodedata.normalize("NFC", rest[0] if rest else "")
        problem = label_problem(name) if name else "is missing"
        if problem is not None:
            raise IdentityError(f"{where}:{n}: the name of cluster {cluster} {problem}; write "
                                "one '<cluster> <name>' a line, the name a valid label")
        names.pop(cluster, None)  # a later line wins, and takes the order of its line
        names[cluster] = Named(f"{where}:{n}: the name", f"line {n}", name)
    clash = label_clash([*taken, *names.values()])
    if clash is not None:
        raise IdentityError(clash)
    return names
