"""ForwardState: what a forward derives once, cached per source and knob, and a new state per forward."""

import pytest
import torch

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.sparse import ffn
from adaspark_eval.sparse.kernels.tiles import build_tiles
from adaspark_eval.sparse.layout import build_layout
from adaspark_eval.sparse.runtime import SparseRuntime
from adaspark_eval.sparse.state import ForwardState
from tests.conftest import random_video

TEXT, VIDEO = 1, 9
# LLM grid 2 x 4 x 4 with cube 1 x 2 x 2 (8 cubes of 4 tokens) between text
IDS = [TEXT] * 3 + [VIDEO] * 32 + [TEXT] * 2


def _layout():
    return build_layout(torch.tensor([IDS]), video_token_id=VIDEO, image_token_id=8, cube=(1, 2, 2),
                        video_grid_thw=torch.tensor([[2, 8, 8]]))


def test_derived_values_are_made_once_per_source_and_knob():
    layout = _layout()
    state = ForwardState(layout)
    cubes = state.group_ids(layout, "cube")
    assert state.group_ids(layout, "cube") is cubes and torch.equal(cubes, ffn.group_ids(layout, "cube"))
    assert torch.equal(state.group_ids(layout, "grid"), ffn.group_ids(layout, "grid"))
    assert state.fixed_ratio_kept(cubes, 0.3) == ffn.fixed_ratio_kept(cubes, 0.3)
    assert state.fixed_ratio_kept(cubes, 0.6) == ffn.fixed_ratio_kept(cubes, 0.6) > state.fixed_ratio_kept(cubes, 0.3)
    tiles = state.tiles(layout, "all")
    assert state.tiles(layout, "all") is tiles and state.tiles(layout, "sparse") is not tiles
    assert torch.equal(tiles.columns, build_tiles(layout, "all").columns)
    copy = _layout()  # an equal layout is another source: its own entries
    assert state.group_ids(copy, "cube") is not cubes
    assert ForwardState(layout).group_ids(layout, "cube") is not cubes  # the next forward makes its own


def test_layout_copies_are_made_once_per_device():
    layout = _layout()
    state = ForwardState(layout)
    assert state.layout_on(layout.unit.device) is layout
    meta = state.layout_on(torch.device("meta"))
    assert meta.unit.is_meta and state.layout_on(torch.device("meta")) is meta
    assert ForwardState(None).layout_on(torch.device("meta")) is None


def test_kernel_tables_are_made_once_per_forward():
    pytest.importorskip("triton")
    from adaspark_eval.sparse.kernels.ffn import build_members
    from adaspark_eval.sparse.kernels.pairs import cube_pair_tables

    layout = _layout()
    state = ForwardState(layout)
    groups, tiles = state.group_ids(layout, "cube"), state.tiles(layout, "all")
    members, tables = state.group_members(groups), state.pair_tables(tiles)
    assert state.group_members(groups) is members and state.pair_tables(tiles) is tables
    assert torch.equal(members.members, build_members(groups).members)
    assert torch.equal(tables.partial, cube_pair_tables(tiles).partial)


@torch.no_grad()
def test_runtime_makes_a_new_state_per_forward_and_detach_drops_it(tiny):
    model, processor = tiny
    inputs = video_prompt(processor, [random_video(1, 8, 56, 56)], "Which colour appears first?")
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.5, cube=(2, 2, 2)))
    try:
        model(**inputs)
        first = sparse.state
        assert first.layout is sparse.layout and first.layout.seq_len == inputs["input_ids"].shape[1]
        assert first.plans == {}  # every MLP took its plan
        model(**inputs)
        assert sparse.state is not first and sparse.state.layout is not first.layout
    finally:
        sparse.detach()
    assert sparse.layout is None and sparse.state is not first
