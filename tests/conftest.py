"""Shared fixtures: the tiny model (built once per session) and seeded random videos."""

from __future__ import annotations

import numpy as np
import pytest

from adaspark_eval.models.tiny import build_tiny


@pytest.fixture(scope="session")
def tiny():
    """(model, processor) of the tiny random-weight Qwen2.5-VL, float32, CPU."""
    return build_tiny(seed=0)


def random_video(seed: int, frames: int, height: int, width: int) -> np.ndarray:
    """(frames, height, width, 3) uint8 noise, deterministic by seed."""
    return np.random.RandomState(seed).randint(0, 256, (frames, height, width, 3), dtype=np.uint8)
