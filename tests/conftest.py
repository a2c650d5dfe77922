"""Shared fixtures: the tiny model (built once per session) and seeded random videos."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from adaspark_eval.datasets.fixtures import write_fixtures
from adaspark_eval.models.tiny import build_tiny


@pytest.fixture(scope="session", autouse=True)
def private_cache_home(tmp_path_factory):
    """Every test's default frame cache (``$XDG_CACHE_HOME/adaspark-eval/frames``) in a temporary folder,
    never the user's ``~/.cache``."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def tiny():
    """(model, processor) of the tiny random-weight Qwen2.5-VL, float32, CPU."""
    return build_tiny(seed=0)


def random_video(seed: int, frames: int, height: int, width: int) -> np.ndarray:
    """(frames, height, width, 3) uint8 noise, deterministic by seed."""
    return np.random.RandomState(seed).randint(0, 256, (frames, height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def benchmark_root(tmp_path_factory):
    """A data root with fixture copies of videomme, mlvu_dev (2 questions each) and videoniah (2 questions
    x 4 tries), videos of 4 frames at 112x140. Read-only: copy a folder before breaking it."""
    return write_fixtures(tmp_path_factory.mktemp("benchmarks"), samples=2, seed=0, frames=4)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run the module's model work on one torch thread: the tiny model runs far faster so than with
    torch's threads fighting over a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
