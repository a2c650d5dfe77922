"""Block tables and mask rule of the flash-attn-4 path (pure torch) against the reference AdaS-Attn."""

import pytest
import torch

from adaspark_eval.sparse.attention import AttentionRule, select_per_unit, sparse_attention, unit_means
from adaspark_eval.sparse.attention import Selection
from adaspark_eval.sparse.kernels.blocks import (block_attention, build_block_tables, dense_mask, from_slots,
                                                  slot_padded, to_slots, unit_reads)
from adaspark_eval.sparse.kernels.tiles import build_tiles
from adaspark_eval.sparse.layout import build_layout
from adaspark_eval.sparse.stats import AttentionStats

TEXT, VIDEO = 1, 9
RULE = AttentionRule(p=0.5, fixed_ratio=None, select="cube", text_queries="dense", text_keys="all", decode=False,
                     sparse_decode=False)


def _case(cube, seed=0, heads=2, kv_heads=1, dim=16):
    """Text, a video of edge cubes (LLM grid 4x6x8 or 4x6x10: full and partial cubes, an odd count), text."""
    width = 20 if cube == (4, 4, 4) else 16
    grid = torch.tensor([[4, 12, width]])
    visual = 4 * 6 * width // 2
    ids = torch.tensor([[TEXT] * 70 + [VIDEO] * visual + [TEXT] * 5])
    layout = build_layout(ids, video_token_id=VIDEO, image_token_id=8, cube=cube, video_grid_thw=grid)
    gen = torch.Generator().manual_seed(seed)
    seq = ids.shape[1]
    query = torch.randn(1, heads, seq, dim, generator=gen)
    key = torch.randn(1, kv_heads, seq, dim, generator=gen)
    value = torch.randn(1, kv_heads, seq, dim, generator=gen)
    kbar = unit_means(key, layout.unit, layout.num_units).repeat_interleave(heads // kv_heads, dim=1)
    keep, _ = select_per_unit(query, kbar, layout, RULE, dim**-0.5, torch.arange(seq))
    return layout, query, key, value, keep


def _reference_slot_mask(layout, tiles, keep, query_block=128):
    """(B, H, S', S') the reference's token-level mask (causal and kept units), in padded slot order."""
    q_pos, _ = slot_padded(tiles, query_block)
    pos = q_pos.clamp_min(0)
    unit = layout.unit.gather(1, pos)
    real = q_pos >= 0
    units = keep.gather(2, unit[:, None, :, None].expand(-1, keep.shape[1], -1, keep.shape[3]))
    by_key = units.gather(3, unit[:, None, None, :].expand(-1, keep.shape[1], unit.shape[1], -1))
    causal = pos[:, None, :] <= pos[:, :, None]
    return by_key & (causal & real[:, None, :] & real[:, :, None])[:, None]


@pytest.mark.parametrize(("cube", "query_block"), [((4, 4, 4), 128), ((4, 4, 8), 128), ((4, 4, 4), 64)])
def test_block_tables_and_mask_rule_give_the_reference_mask(cube, query_block):
    layout, query, key, value, keep = _case(cube)
    tiles = build_tiles(layout, "all")
    tables = build_block_tables(keep, tiles, query_block)
    assert tables.cubes == query_block // tiles.tile
    got = dense_mask(tables, tiles)
    expected = _reference_slot_mask(layout, tiles, keep, query_block)
    real = slot_padded(tiles, query_block)[0] >= 0
    assert torch.equal(got[:, :, real[0]], expected[:, :, real[0]])
    assert int(tables.full_cnt.sum()) > 0 and int(tables.mask_cnt.sum()) > 0
    assert (tables.block_units >= tables.kept_units).all()
    if tables.cubes == 1:
        assert torch.equal(tables.block_units, tables.kept_units)


def test_full_blocks_need_no_mask():
    layout, _, _, _, keep = _case((4, 4, 8))
    tiles = build_tiles(layout, "all")
    tables = build_block_tables(keep, tiles)
    expected = _reference_slot_mask(layout, tiles, keep)
    for h in range(keep.shape[1]):
        for m in range(tables.num_blocks):
            for n in tables.full_idx[0, h, m, : tables.full_cnt[0, h, m]].tolist():
                rows = slice(m * 128, (m + 1) * 128)
                block = expected[0, h, rows, n * 128:(n + 1) * 128]
                real_rows = slot_padded(tiles)[0][0, rows] >= 0
                assert block[real_rows].all()


def test_reads_from_compacted_lists():
    """The read sets rebuilt from lists laid out as the selection kernels store them (full columns at the front,
    the others at the back) are the kept units a query unit can see."""
    layout, _, _, _, keep = _case((4, 4, 4))
    tiles = build_tiles(layout, "all")
    bsz, heads, units, _ = keep.shape
    cols = tiles.num_columns
    n_cols = int((tiles.col_size > 0).sum())
    lists = torch.full((bsz, heads, units, cols), 12345, dtype=torch.int32)
    counts = torch.zeros(bsz, heads, units, dtype=torch.int32)
    full_counts = torch.zeros_like(counts)
    for h in range(heads):
        for u in range(units):
            read = [c for c in range(n_cols) if keep[0, h, u, tiles.columns[0, c]]
                    and tiles.col_first[0, c] <= tiles.unit_last[0, u]]
            front, back = read[: len(read) // 2], read[len(read) // 2:]
            lists[0, h, u, : len(front)] = torch.tensor(front, dtype=torch.int32)
            if back:
                lists[0, h, u, cols - len(back):] = torch.tensor(back[::-1], dtype=torch.int32)
            counts[0, h, u], full_counts[0, h, u] = len(read), len(front)
    reads = unit_reads(lists, counts, full_counts, tiles)
    visible = layout.unit_first[:, None, :] <= layout.unit_last[:, :, None]
    real = (layout.unit_size > 0)[:, None, :] & (layout.unit_size > 0)[:, :, None]
    assert torch.equal(reads, keep & (visible & real)[:, None])


@pytest.mark.parametrize("cube", [(4, 4, 4), (4, 4, 8)])
def test_block_attention_matches_reference_output(cube):
    layout, query, key, value, keep = _case(cube, seed=1, heads=4, kv_heads=2)
    tiles = build_tiles(layout, "all")
    tables = build_block_tables(keep, tiles)
    got = block_attention(query, key, value, tables, tiles, 0.25)
    index = layout.unit[:, None, :, None].expand(-1, keep.shape[1], -1, keep.shape[3])
    selection = Selection(keep=[keep.gather(2, index)], chunk=query.shape[2], pruned=True, stats=AttentionStats())
    expected, _ = sparse_attention(query, key, value, None, selection, layout.unit, 0.25)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cube", [(4, 4, 4), (4, 4, 8)])
def test_slot_order_round_trip_is_a_permutation(cube):
    """to_slots / from_slots are row gathers: every position has exactly one slot, and a batch of two (the
    second sample's tokens reversed in value) comes back unchanged."""
    layout, query, _, _, _ = _case(cube, heads=3)
    tiles = build_tiles(layout, "all")
    q_pos, _ = slot_padded(tiles)
    seq = query.shape[2]
    assert torch.equal(q_pos[q_pos >= 0].sort().values, torch.arange(seq, dtype=q_pos.dtype))
    slots = to_slots(query, q_pos)
    assert slots.shape == (1, q_pos.shape[1], 3, query.shape[3]) and slots.transpose(1, 2).is_contiguous()
    assert torch.equal(slots[0, q_pos[0] >= 0], query[0].transpose(0, 1)[q_pos[0][q_pos[0] >= 0].long()])
    assert torch.equal(from_slots(slots, q_pos, seq), query.transpose(1, 2))
    pair, pos2 = torch.cat([query, query.flip(2)]), q_pos.expand(2, -1)
    assert torch.equal(from_slots(to_slots(pair, pos2), pos2, seq), pair.transpose(1, 2))
