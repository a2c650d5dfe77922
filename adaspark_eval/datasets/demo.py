"""The offline demo data: when no data root is given for VideoNIAH alone, the harness generates the
demo set (``data.niah.presets.DEMO_NIAH``) once into the user's cache and evaluates on it."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path

from adaspark_eval.config import short_hash
from adaspark_eval.data.niah.generate import generate
from adaspark_eval.data.niah.presets import DEMO_NIAH


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/adaspark-eval`` (default ``~/.cache/adaspark-eval``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "adaspark-eval"


def demo_root() -> Path:
    """A data root holding ``videoniah/`` with the demo set, generated on first use (atomically: a
    half-written set is never used)."""
    tag = short_hash(asdict(DEMO_NIAH), length=10)
    root = cache_dir() / f"demo-{tag}"
    if not (root / "videoniah").is_dir():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        generate(DEMO_NIAH, partial / "videoniah")
        partial.rename(root)
    return root
