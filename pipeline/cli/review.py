"""The commands that look at a finished run: ``sheet`` (rebuild the contact sheets and review
page) and ``review`` (serve the page)."""
from __future__ import annotations

import errno
import sys
from typing import TYPE_CHECKING

import click

from ..core.layout import REJECTS, OutputLayout
from ..state.lock import LockError
from .render import fail, load, write_failed

if TYPE_CHECKING:  # the type only: importing the sheets costs every command's start
    from ..review.sheets import By


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--by", type=click.Choice(["label", "split", "person"]), default=None,
              help="label: a sheet per label; split: also one per split; person: also one per "
                   "identity cluster (default: the config's sheet.by).")
def sheet(config: str, by: By | None) -> None:
    """(Re)build the contact sheets and the review page from the manifest only."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..review.rows import SheetError
    from ..review.sheets import build_sheets
    from ..state.lock import RunLock

    cfg = load(config)
    if not OutputLayout(cfg.output_dir).manifest_jsonl.is_file():
        fail(f"no manifest in {cfg.output_dir}/ yet: run the pipeline first")
    try:
        with RunLock(cfg.output_dir, "sheet"):
            report = build_sheets(cfg, cfg.output_dir, by=by or cfg.sheet.by,
                                      force=True)
    except (SheetError, LockError) as exc:
        fail(exc)
    except OSError as exc:
        write_failed("sheets not rebuilt (the previous ones are kept)", exc)
    click.echo(f"sheets: {len(report.images)} image(s) in {report.dir}/")
    click.echo(f"review page: {report.index}")


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port on 127.0.0.1 (default: a free one).")
@click.option("--open", "open_browser", is_flag=True, help="Also open the page in the web browser.")
def review(config: str, port: int, open_browser: bool) -> None:
    """Serve the review page on 127.0.0.1; its save buttons write <output>/rejects.txt and
    <output>/identities.txt (names of person clusters)."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..review.server import ReviewServer
    from ..review.rows import SheetError
    from ..review.sheets import build_sheets
    from ..state.lock import RunLock

    cfg = load(config)
    root = cfg.output_dir
    if not OutputLayout(root).manifest_jsonl.is_file():
        fail(f"no manifest in {root}/ yet: run the pipeline first")
    try:
        with RunLock(root, "review"):  # the page as the manifest says (kept as it is when up to date)
            build_sheets(cfg, root, by=cfg.sheet.by)
        server = ReviewServer(root, port, on_save=lambda name, n: click.echo(
            f"saved {n} {'crop id(s)' if name == REJECTS else 'name(s)'} to {root / name}; "
            "run the pipeline again to apply them"))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on 127.0.0.1 is in use by another program; choose another with "
                 "--port N, or leave --port out for a free one")
        fail(exc)
    except (SheetError, LockError) as exc:
        fail(exc)
    click.echo(f"review page: {server.url}  (Ctrl-C to stop)", nl=True)
    sys.stdout.flush()
    if open_browser:
        # lazy: only --open needs a browser
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.httpd.server_close()
