"""Work functions for tests/data/test_prefetch.py. Spawned workers import them by module name, so they
live in this plain module (the test puts its folder on sys.path, which the workers inherit)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from adaspark_eval.data.video import VideoError

OFFSET = 0  # set by `set_offset`, once per worker


def set_offset(offset: int) -> None:
    """Initializer: the worker's module-level slot."""
    global OFFSET
    OFFSET = offset


def add_offset(item: int) -> tuple[int, int]:
    """``item + OFFSET`` and the pid that computed it."""
    return item + OFFSET, os.getpid()


def refuse() -> None:
    """An initializer that fails."""
    raise FileNotFoundError("no processor at /models/none")


def square_after(item: tuple[int, float]) -> int:
    """``n * n`` after sleeping ``delay`` seconds."""
    n, delay = item
    time.sleep(delay)
    return n * n


class Unportable(Exception):
    """An exception that does not survive pickling (its class needs a keyword its args lack)."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{message} ({path})")


def fail_some(item: int) -> int:
    """``10 * item``; a VideoError for items 1 mod 3, a ZeroDivisionError for 5, an Unportable for 7."""
    if item == 5:
        return 1 // 0
    if item == 7:
        raise Unportable("cannot read", path=f"/videos/{item}.mp4")
    if item % 3 == 1:
        raise VideoError(f"video {item}.mp4 does not decode: re-download it")
    return 10 * item


def die_once(item: tuple[int, str | None]) -> int:
    """``value``; but the first time it sees ``marker`` (a path not yet there) it creates it and
    SIGKILLs its own process, so the retry succeeds."""
    value, marker = item
    if marker is not None and not Path(marker).exists():
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def die_on(item: int | str) -> int | str:
    """``item``, but the process exits with code 3 whenever ``item == "die"``."""
    if item == "die":
        os._exit(3)
    return item


def worker_settings(item: int) -> tuple[str | None, str | None, bool]:
    """The worker's OMP_NUM_THREADS and TOKENIZERS_PARALLELISM, and whether it ignores SIGINT."""
    return (os.environ.get("OMP_NUM_THREADS"), os.environ.get("TOKENIZERS_PARALLELISM"),
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN)


def slow_offset(offset: int, seconds: float) -> None:
    """Initializer: ``set_offset`` after ``seconds`` (a worker importing torch and building a processor)."""
    time.sleep(seconds)
    set_offset(offset)
