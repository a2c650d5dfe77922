"""What of the flash-attn-4 path runs without it: the one-line reason it cannot run, what it expresses, the
dense fallback to sdpa, and the per-sample record of the union's extra work."""

import torch

from adaspark_eval.sparse.attention import AttentionRule
from adaspark_eval.sparse.kernels import dispatch, fa4
from adaspark_eval.sparse.kernels.tiles import build_tiles
from adaspark_eval.sparse.layout import build_layout
from adaspark_eval.sparse.stats import AttentionStats, ForwardRecord


def _rule(select: str) -> AttentionRule:
    return AttentionRule(p=0.5, fixed_ratio=None, select=select, text_queries="dense", text_keys="all", decode=False,
                         sparse_decode=False)


def test_problem_is_one_line_naming_the_fix():
    reason = fa4.problem("cpu", "attn_impl=fa4")
    assert reason is not None and reason.startswith("attn_impl=fa4 ") and "\n" not in reason
    assert "pip install" in reason or "--device cuda" in reason


def test_only_cube_selections_over_64_or_128_slot_units_are_expressed():
    ids = torch.tensor([[1] * 3 + [9] * 256 + [1] * 2])
    grid = torch.tensor([[4, 16, 16]])
    for cube, tile_ok in (((4, 4, 4), True), ((4, 4, 8), True), ((2, 2, 2), False)):
        layout = build_layout(ids, video_token_id=9, image_token_id=8, cube=cube, video_grid_thw=grid)
        tiles = build_tiles(layout, "all")
        assert fa4.expresses(_rule("cube"), tiles) == tile_ok
        assert not fa4.expresses(_rule("token"), tiles)


def test_the_config_level_reason_agrees_with_what_the_layouts_express():
    """``unexpressed`` (checked before the model loads, to warn) says None exactly where a layout of full cubes
    is expressed; cubes of 33-128 tokens (4x4x6: 96, padded to 128 slots) are."""
    ids = torch.tensor([[1] * 3 + [9] * 3072 + [1] * 2])
    grid = torch.tensor([[4, 48, 64]])  # LLM grid 4 x 24 x 32: a whole cube of every shape below
    for cube in ((4, 4, 4), (4, 4, 8), (4, 4, 6), (2, 4, 4), (2, 2, 2), (4, 8, 8)):
        layout = build_layout(ids, video_token_id=9, image_token_id=8, cube=cube, video_grid_thw=grid)
        tiles = build_tiles(layout, "all")
        assert fa4.cube_tile(cube) == tiles.tile
        for select in ("cube", "token"):
            reason = fa4.unexpressed(select, cube)
            assert (reason is None) == fa4.expresses(_rule(select), tiles), (cube, select, reason)
            assert reason is None or "\n" not in reason
    assert fa4.unexpressed("cube", (4, 4, 6)) is None and "256 slots" in fa4.unexpressed("cube", (4, 8, 8))


def test_dense_attention_leaves_the_cpu_and_sdpa_to_sdpa():
    q, k = torch.randn(1, 2, 8, 16), torch.randn(1, 1, 8, 16)
    assert dispatch.dense_attention("fa4", q, k, k, None, 0.25) is None  # CPU tensors
    assert dispatch.dense_attention("sdpa", q, k, k, None, 0.25) is None


def test_block_work_sums_the_layers_that_report_it():
    record = ForwardRecord(phase="prefill", q_len=8, kv_len=8, batch=2)
    assert record.block_work() is None
    record.attention[0] = AttentionStats(kept_units=torch.tensor([10, 4]), block_units=torch.tensor([12, 4]))
    record.attention[1] = AttentionStats(kept_units=torch.tensor([5, 1]), block_units=torch.tensor([8, 2]))
    record.attention[2] = AttentionStats()  # a dense layer
    assert record.block_work(1) == {"kept_units": 5, "block_units": 6}
