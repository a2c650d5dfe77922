"""Shared fixtures: a tiny random Qwen2.5-VL of this folder's own (its tests attach and detach AdaSpark)
and one seeded video prompt (8 frames of 112x168: a grid of 4 x 4 x 6 LLM tokens)."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import BatchFeature

from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.tiny import build_tiny


@pytest.fixture(scope="session")
def tiny():
    return build_tiny(seed=0)


@pytest.fixture(scope="session")
def video_inputs(tiny) -> BatchFeature:
    frames = np.random.default_rng(0).integers(0, 256, (8, 112, 168, 3), dtype=np.uint8)
    return video_prompt(tiny[1], [frames], "What happens?")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread) -> None:
    """Every module here runs models: on one torch thread, faster on a shared 2-core machine."""
