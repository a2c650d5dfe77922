"""``adaspark-eval cache``: look at or empty the persistent frame cache (decoded, resized video frames)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from adaspark_eval.cli.common import fail, friendly

if TYPE_CHECKING:
    from adaspark_eval.data.frame_cache import FrameCache

cache_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="The frame cache: decoded, resized frames reused across questions and runs.")

FrameCacheOption = Annotated[Path | None, typer.Option(
    "--frame-cache", help="frame cache folder (default: $XDG_CACHE_HOME/adaspark-eval/frames, "
                          "else ~/.cache/adaspark-eval/frames)")]


@cache_app.command("info")
@friendly
def info_command(frame_cache: FrameCacheOption = None) -> None:
    """Entries, bytes and folder of the frame cache."""
    cache = _cache(frame_cache)
    try:
        info = cache.info()
    except OSError as error:
        raise fail(f"cannot read frame cache {cache.folder} ({error.strerror or error}): "
                   "check the folder's permissions") from None
    typer.echo(f"folder: {info.folder}\nentries: {info.entries}\nbytes: {info.bytes} ({info.bytes / 1e9:.2f} GB)")


@cache_app.command("clear")
@friendly
def clear_command(frame_cache: FrameCacheOption = None) -> None:
    """Delete every entry of the frame cache (other files in the folder are left alone)."""
    cache = _cache(frame_cache)
    try:
        deleted = cache.clear()
    except OSError as error:
        raise fail(f"cannot clear frame cache {cache.folder} ({error.strerror or error}): "
                   "check the folder's permissions") from None
    typer.echo(f"cleared {deleted} entries from {cache.folder}")


def _cache(folder: Path | None) -> FrameCache:
    """The cache at ``folder`` (default folder when None); a path that is not a folder is a user error."""
    from adaspark_eval.data.frame_cache import FrameCache, default_folder

    cache = FrameCache(folder if folder is not None else default_folder())
    if cache.folder.exists() and not cache.folder.is_dir():
        raise fail(f"frame cache {cache.folder} is not a folder: pass --frame-cache DIR naming a folder")
    return cache
