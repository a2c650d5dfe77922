"""Read-list compaction under Triton's CPU interpreter, against the list layout the attention kernel reads."""

import pytest
import torch

from adaspark_eval.sparse.layout import build_layout
from tests.sparse.interpreted import INTERPRETED, needs_interpreter

if INTERPRETED:
    from adaspark_eval.sparse.kernels.lists import compact_lists
    from adaspark_eval.sparse.kernels.tiles import build_tiles

TEXT, VIDEO = 1, 9


def _tiles():
    """One sample of 128 cubes of 4 tokens between text: 128 columns, full and partial ones."""
    ids = torch.tensor([[TEXT] * 3 + [VIDEO] * 512 + [TEXT] * 2])
    layout = build_layout(ids, video_token_id=VIDEO, image_token_id=8, cube=(1, 2, 2),
                          video_grid_thw=torch.tensor([[4, 32, 16]]))
    return build_tiles(layout, "all")


def _expected(reads: torch.Tensor, tiles) -> tuple[list, list]:
    """Per tile (flattened): its full read columns in position order, and the others in reverse order."""
    full = (tiles.col_last[:, None, :] <= tiles.unit_first[:, :, None]) & (tiles.col_size[:, None, :] == tiles.tile)
    full = full[:, None].expand_as(reads).reshape(-1, reads.shape[-1])
    fronts, backs = [], []
    for row, is_full in zip(reads.reshape(-1, reads.shape[-1]), full):
        fronts.append((row & is_full).nonzero().flatten().tolist())
        backs.append((row & ~is_full).nonzero().flatten().flip(0).tolist())
    return fronts, backs


@needs_interpreter
@pytest.mark.parametrize("chunk", [32, 128])
def test_compacted_lists_hold_full_columns_in_front_and_the_rest_at_the_back(chunk):
    tiles = _tiles()
    heads, cols = 2, tiles.num_columns
    gen = torch.Generator().manual_seed(0)
    reads = torch.rand(1, heads, tiles.num_units, cols, generator=gen) < 0.4
    bits = reads.view(1, heads, tiles.num_units, cols // 32, 32).int() << torch.arange(32, dtype=torch.int32)
    words = bits.sum(-1, dtype=torch.int64)
    words = torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)  # as int32 bit patterns
    lists, counts, full_counts = compact_lists(words, tiles, chunk=chunk)
    fronts, backs = _expected(reads, tiles)
    for tile, (list_, count, n_full) in enumerate(zip(lists.reshape(-1, cols), counts.flatten(), full_counts.flatten())):
        assert n_full == len(fronts[tile]) and count == n_full + len(backs[tile])
        assert list_[:n_full].tolist() == fronts[tile]
        assert list_[cols - len(backs[tile]):].tolist() == backs[tile]
