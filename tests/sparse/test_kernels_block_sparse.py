"""Block-sparse prefill attention on the flash kernel against the reference path, under Triton's CPU interpreter:
lists of the block mask, outputs, pairs."""

import torch

from adaspark_eval.sparse.blocks import attend_blocks, causal_blocks
from tests.sparse.interpreted import INTERPRETED, needs_interpreter

if INTERPRETED:
    from adaspark_eval.sparse.kernels.block_sparse import block_lists, block_tiles


def _keep(bsz: int, heads: int, blocks: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    keep = torch.rand(bsz, heads, blocks, blocks, generator=generator) > 0.5
    keep |= torch.eye(blocks, dtype=torch.bool)
    return keep & causal_blocks(blocks)


@needs_interpreter
def test_lists_hold_the_kept_blocks_full_ones_first() -> None:
    keep = _keep(1, 2, 5, 0)
    tiles = block_tiles(1, 70, 16, torch.device("cpu"))  # 5 blocks, the last of 6 positions
    lists = block_lists(keep, tiles)
    for h in range(2):
        for u in range(5):
            count, full = int(lists.counts[0, h, u]), int(lists.full_counts[0, h, u])
            row = lists.lists[0, h, u].tolist()
            listed = row[:full] + row[len(row) - (count - full):]
            assert sorted(listed) == torch.nonzero(keep[0, h, u]).flatten().tolist()
            assert row[:full] == [j for j in range(u) if keep[0, h, u, j] and j < 4]  # block 4 is short


@needs_interpreter
def test_kernel_equals_the_reference_path() -> None:
    generator = torch.Generator().manual_seed(1)
    bsz, heads, kv_heads, seq, dim, block = 2, 4, 2, 75, 16, 16
    query = torch.randn(bsz, heads, seq, dim, generator=generator).to(torch.bfloat16)
    key, value = (torch.randn(bsz, kv_heads, seq, dim, generator=generator).to(torch.bfloat16) for _ in range(2))
    keep = _keep(bsz, heads, 5, 2)
    real = torch.ones(bsz, seq, dtype=torch.bool)
    reference, ref_stats = attend_blocks(query.float(), key.float(), value.float(), None, keep, block, 32, 0.25, real)
    output, stats = attend_blocks(query, key, value, None, keep, block, 32, 0.25, real, backend="triton")
    torch.testing.assert_close(output.float(), reference, atol=2e-2, rtol=2e-2)
    assert torch.equal(stats.pairs, ref_stats.pairs)
