"""AdaS-Attn kernels against the reference, under Triton's CPU interpreter: kept sets, outputs, statistics."""

import pytest
import torch
import torch.nn.functional as F

from adaspark_eval.sparse.attention import AttentionRule, select_units, sparse_attention
from adaspark_eval.sparse.layout import build_layout
from tests.sparse.interpreted import INTERPRETED, needs_interpreter

if INTERPRETED:
    from adaspark_eval.sparse.kernels.attention import choosing_units, kernel_attention
    from adaspark_eval.sparse.kernels.select import select_tiles
    from adaspark_eval.sparse.kernels.tiles import build_tiles

TEXT, VIDEO = 1, 9
HEADS, KV_HEADS, DIM = 2, 1, 16
# two samples of 140 tokens; LLM grids 4 x 4 x 8 and 4 x 8 x 4; cube 2 x 2 x 4 (16 tokens, 8 cubes each)
IDS = [[TEXT] * 5 + [VIDEO] * 128 + [TEXT] * 7, [TEXT] * 9 + [VIDEO] * 128 + [TEXT] * 3]
GRIDS = [[4, 8, 16], [4, 16, 8]]


def _inputs(batch: int, dtype: torch.dtype, seed: int):
    layout = build_layout(torch.tensor(IDS[:batch]), video_token_id=VIDEO, image_token_id=8, cube=(2, 2, 4),
                          video_grid_thw=torch.tensor(GRIDS[:batch]))
    gen = torch.Generator().manual_seed(seed)
    seq = layout.seq_len
    q, k, v = (torch.randn(batch, h, seq, DIM, generator=gen).to(dtype) for h in (HEADS, KV_HEADS, KV_HEADS))
    return layout, q, k, v


def _many_cubes_inputs(dtype: torch.dtype, seed: int):
    """One sample with 128 cubes of 4 tokens (128 columns): selection programs narrow to 32, 64 or 128 columns."""
    ids = torch.tensor([[TEXT] * 3 + [VIDEO] * 512 + [TEXT] * 2])
    layout = build_layout(ids, video_token_id=VIDEO, image_token_id=8, cube=(1, 2, 2),
                          video_grid_thw=torch.tensor([[4, 32, 16]]))
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(1, h, layout.seq_len, DIM, generator=gen).to(dtype) for h in (HEADS, KV_HEADS))
    return layout, q, k


def _rule(**changes) -> AttentionRule:
    return AttentionRule(**{"p": 0.5, "fixed_ratio": None, "select": "token", "text_queries": "dense",
                            "text_keys": "all", "decode": False, "sparse_decode": False, **changes})


def _allowed(selection, tiles, layout, select: str) -> torch.Tensor:
    """(B, H, S, U) bool: the units each query may read according to the kernel selection, in the form of
    the reference's ``keep`` (kept candidates and every non-candidate). For ``cube`` the kernel keeps one
    list per tile restricted to the tile's visible units; the others are left True as in the reference."""
    bsz, heads = selection.counts.shape[:2]
    cols = torch.arange(tiles.num_columns)
    if select == "token":
        words = selection.bits[..., cols // 32]  # (B, H, U*T, C)
        per_slot = ((words >> (cols % 32)) & 1).bool()
    else:
        rest = (selection.counts - selection.full_counts)[..., None]
        taken = (cols < selection.full_counts[..., None]) | (cols >= tiles.num_columns - rest)
        listed = torch.zeros(*selection.lists.shape[:3], tiles.num_columns + 1, dtype=torch.bool)
        listed.scatter_(3, torch.where(taken, selection.lists, tiles.num_columns).long(), True)
        listed = listed[..., :-1]
        visible = tiles.col_first[:, None, :] <= tiles.unit_last[:, :, None]  # (B, U, C)
        per_unit = torch.where(visible[:, None], listed, True)
        per_slot = per_unit.repeat_interleave(tiles.tile, dim=2)
    allowed = torch.ones(bsz, heads, layout.seq_len, tiles.num_units, dtype=torch.bool)
    for b in range(bsz):
        real = tiles.slot_pos[b] >= 0
        n_cols = int((tiles.col_first[b] < layout.seq_len).sum())
        pos = tiles.slot_pos[b, real].long()
        units = tiles.columns[b, :n_cols].long()
        allowed[b][:, pos[:, None], units[None, :]] = per_slot[b][:, real][:, :, :n_cols]
    return allowed


def _check_against_reference(select: str, batch: int, dtype: torch.dtype, **rule_changes) -> None:
    layout, q, k, v = _inputs(batch, dtype, seed=hash((select, batch, str(dtype))) % 1000)
    rule = _rule(select=select, **rule_changes)
    scale = DIM**-0.5
    tiles = build_tiles(layout, rule.text_keys)
    selection = select_tiles(q, k, tiles, choosing_units(layout, rule.text_queries), select, rule.p,
                             rule.fixed_ratio, scale)
    reference = select_units(q.float(), k.float(), layout, rule, scale, chunk=64)
    ref_keep = torch.cat(reference.keep, dim=2)
    assert torch.equal(_allowed(selection, tiles, layout, select), ref_keep)

    output, stats = kernel_attention(q, k, v, layout, tiles, rule, scale)
    ref_out, ref_pairs = sparse_attention(q.float(), k.float(), v.float(), None, reference, layout.unit, scale)
    assert output.dtype == dtype
    assert (output.float() - ref_out).norm() / ref_out.norm() < 1e-2
    assert torch.equal(stats.pairs, ref_pairs)
    want = reference.stats
    for name in ("score_dots", "key_means", "query_means"):
        assert torch.equal(getattr(stats, name), getattr(want, name)), name
    assert float(stats.selecting_rows) == float(want.selecting_rows)
    assert torch.allclose(stats.kept_fraction, want.kept_fraction, atol=1e-6)
    assert float(stats.entropy) == pytest.approx(float(want.entropy), rel=1e-5)


@needs_interpreter
def test_token_selection_and_output_match_reference():
    _check_against_reference("token", batch=1, dtype=torch.bfloat16, p=0.5)


@needs_interpreter
def test_cube_selection_and_output_match_reference_on_a_batch():
    _check_against_reference("cube", batch=2, dtype=torch.bfloat16, p=0.6)


@needs_interpreter
def test_fixed_ratio_in_fp16_matches_reference():
    _check_against_reference("token", batch=1, dtype=torch.float16, fixed_ratio=0.3)


@needs_interpreter
def test_sparse_text_keys_and_queries_match_reference():
    _check_against_reference("cube", batch=1, dtype=torch.bfloat16, p=0.7, text_keys="sparse", text_queries="sparse")


@needs_interpreter
@pytest.mark.parametrize("select", ["token", "cube"])
@pytest.mark.parametrize("changes", [{"p": 0.6}, {"fixed_ratio": 0.2}])
def test_selection_over_narrowed_columns_matches_reference(select: str, changes: dict):
    layout, q, k = _many_cubes_inputs(torch.bfloat16, seed=5)
    rule = _rule(select=select, **changes)
    tiles = build_tiles(layout, rule.text_keys)
    assert tiles.num_columns == 128
    selection = select_tiles(q, k, tiles, choosing_units(layout, rule.text_queries), select, rule.p,
                             rule.fixed_ratio, DIM**-0.5)
    reference = select_units(q.float(), k.float(), layout, rule, DIM**-0.5, chunk=64)
    assert torch.equal(_allowed(selection, tiles, layout, select), torch.cat(reference.keep, dim=2))


@needs_interpreter
def test_p_one_equals_dense_causal_attention():
    layout, q, k, v = _inputs(1, torch.bfloat16, seed=3)
    output, stats = kernel_attention(q, k, v, layout, build_tiles(layout, "all"), _rule(p=1.0), DIM**-0.5)
    dense = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True, enable_gqa=True)
    dense = dense.transpose(1, 2)
    assert (output.float() - dense).norm() / dense.norm() < 1e-2
    seq = layout.seq_len
    assert int(stats.pairs) == HEADS * seq * (seq + 1) // 2
    assert torch.all(stats.kept_fraction == 1.0)


@needs_interpreter
@pytest.mark.parametrize("select", ["token", "cube"])
def test_tensor_descriptor_and_pointer_loads_agree(select: str):
    from adaspark_eval.sparse.kernels.flash import FlashLaunch, sparse_flash

    layout, q, k, v = _inputs(2, torch.bfloat16, seed=5)
    tiles = build_tiles(layout, "all")
    selection = select_tiles(q, k, tiles, choosing_units(layout, "dense"), select, 0.6, None, DIM**-0.5)
    pointer, described = (sparse_flash(q, k, v, tiles, selection, DIM**-0.5, FlashLaunch(tma=tma)) for tma in (False, True))
    real = layout.unit != -1
    assert torch.equal(pointer[real], described[real])


@needs_interpreter
def test_slot_order_copies_each_units_rows_from_a_strided_view():
    from adaspark_eval.sparse.kernels.flash import slot_order

    layout, _, k, _ = _inputs(2, torch.bfloat16, seed=7)
    tiles = build_tiles(layout, "all")
    strided = k.transpose(1, 2).contiguous().transpose(1, 2)  # (B, Hkv, S, D) as transformers hands it over
    copied = slot_order(strided, tiles)
    index = tiles.slot_pos.clamp_min(0).long()
    assert copied.is_contiguous()
    assert torch.equal(copied, k.gather(2, index[:, None, :, None].expand(-1, k.shape[1], -1, k.shape[3])))
