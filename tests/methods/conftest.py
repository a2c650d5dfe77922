"""The tiny model with a two-video prompt, and a method attached for the length of a block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.methods import attach, make_method
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.sparse.runtime import SparseRuntime
from tests.conftest import random_video

# LLM grids 8 x 4 x 5 and 4 x 3 x 4 (video_grid_thw [[8, 8, 10], [4, 6, 8]])
VIDEOS = [random_video(1, 16, 112, 140), random_video(2, 8, 84, 112)]


@pytest.fixture(scope="module")
def prompt(tiny, one_torch_thread):
    """(model, inputs, dense logits (1, S, V)) of the two-video prompt."""
    model, processor = tiny
    inputs = video_prompt(processor, VIDEOS, "Which colour appears first?")
    with torch.no_grad():
        dense = model(**inputs).logits
    return model, inputs, dense


@contextmanager
def attached(model: nn.Module, name: str, settings: dict | None = None, **knobs) -> Iterator[SparseRuntime]:
    """Method ``name`` attached to ``model`` inside the block, detached after it."""
    sparse = attach(model, make_method(name, settings), AdaSparkConfig(**knobs))
    try:
        with torch.no_grad():
            yield sparse
    finally:
        sparse.detach()
