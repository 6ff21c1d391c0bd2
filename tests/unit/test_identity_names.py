"""identities.txt as people write it by hand: comments, spaces in names, encodings, bad names."""
from __future__ import annotations

import pytest

from pipeline.steps.names import IdentityError, read_names


def test_names_file_reads_like_a_hand_edited_file(tmp_path):
    path = tmp_path / "identities.txt"
    text = ("# who is who\r\n\r\n  c1_000000000_0 \t Aaron Guiel  # the batter\r\n"
            "c2_000001000_1 pilote_e\u0301te\u0301\r\nc1_000000000_0 Aaron\r\n")
    path.write_bytes(text.encode("utf-16"))
    # a later line for a cluster wins; names are NFC like config labels
    assert read_names(path) == {"c1_000000000_0": "Aaron", "c2_000001000_1": "pilote_\u00e9t\u00e9"}


@pytest.mark.parametrize("line, problem", [("c1 ../x", "path separator"), ("c1", "is missing"),
                                           ("c1 CON", "reserved file name"),
                                           ("c1 a:b", "not allowed in Windows")])
def test_a_name_that_is_no_label_is_refused_with_its_line(tmp_path, line, problem):
    path = tmp_path / "identities.txt"
    path.write_text(f"# names\nc0 fine\n{line}\n")
    with pytest.raises(IdentityError, match=rf"identities.txt:3: the name of cluster c1 .*{problem}"):
        read_names(path)
