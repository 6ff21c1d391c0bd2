"""Progress bars that stay out of logs: shown on a terminal, silent when output is piped."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar; ``disable=None`` makes tqdm hide it when stderr is not a TTY."""
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=None if enabled else True, **kwargs)
