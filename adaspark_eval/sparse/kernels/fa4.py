"""AdaS-Attn and dense attention on flash-attn-4 (``pip install 'adaspark-eval[gpu]'``, sm90 / sm100 GPUs).

``backend=fa4``: the project's cube selection kernels pick each cube's kept units as before; ``blocks`` turns
their lists into flash-attn-4's block-sparse tensors over slot-ordered queries, keys and values, and
flash-attn-4's forward runs the kept blocks, full ones unmasked and the rest through a ``mask_mod`` that
computes ``blocks.allowed`` (causal on the tokens' positions; with 64-token cubes, also the query's cube's bit).
``attn_impl=fa4``: dense causal prefill attention on flash-attn-4 instead of sdpa.

flash-attn-4 and its CuTe DSL are imported only when a call runs; ``problem`` says, without importing them,
why they cannot run here.
"""

from __future__ import annotations

import importlib.util
from functools import cache

import torch
from torch import Tensor

from adaspark_eval.sparse.attention import AttentionRule
from adaspark_eval.sparse.kernels.blocks import BLOCK_TILES, QUERY_BLOCK, BlockTables, build_block_tables, from_slots, \
    slot_padded, to_slots, unit_reads
from adaspark_eval.sparse.kernels.tiles import CubeTiles, next_power_of_two
from adaspark_eval.sparse.layout import TokenLayout
from adaspark_eval.sparse.state import ForwardState
from adaspark_eval.sparse.stats import AttentionStats

ARCHS = (9, 10)  # compute capability majors flash-attn-4's forward runs on (Hopper sm90, Blackwell sm100)
INSTALL = "pip install 'adaspark-eval[gpu]'"


def problem(device: str | torch.device | None = None, what: str = "backend=fa4") -> str | None:
    """Why flash-attn-4 cannot run on ``device`` (None: the current CUDA device), as one line naming the fix;
    None where it can."""
    if importlib.util.find_spec("flash_attn") is None or importlib.util.find_spec("flash_attn.cute") is None:
        return f"{what} needs flash-attn-4, which is not installed: {INSTALL} (or pass backend=triton / attn_impl=sdpa)"
    if device is not None and torch.device(device).type != "cuda":
        return f"{what} runs on a CUDA GPU, not on {device}: pass --device cuda, or backend=triton / attn_impl=sdpa"
    if not torch.cuda.is_available():
        return f"{what} needs a CUDA GPU (sm90 or sm100) and none is visible: pass backend=triton / attn_impl=sdpa"
    major, minor = torch.cuda.get_device_capability(device)
    if major not in ARCHS:
        return (f"{what} runs on sm90/sm100 GPUs (H100/H200, B200); this one is sm{major}{minor}: "
                "pass backend=triton / attn_impl=sdpa")
    return None


def expresses(rule: AttentionRule, tiles: CubeTiles) -> bool:
    """Whether flash-attn-4's blocks express the layer exactly: one selection per cube (``select=cube``) over
    units of 64 or 128 slots. Otherwise the project's kernel runs (``select=token``: each query its own set)."""
    return rule.select == "cube" and tiles.tile in BLOCK_TILES


def cube_tile(cube: tuple[int, int, int]) -> int:
    """Slots of a unit of whole ``cube``s: their volume padded to a power of two (``tiles.build_tiles``)."""
    return next_power_of_two(cube[0] * cube[1] * cube[2], 16)


def unexpressed(select: str, cube: tuple[int, int, int]) -> str | None:
    """Why no layer of a config with ``select`` and ``cube`` runs on flash-attn-4's blocks (``expresses`` is
    then false for its layouts), as a phrase; None where its layers can. The units are the cubes' volume
    padded to a power of two (``tiles.build_tiles``), so cubes of 33-128 tokens give 64- or 128-slot units."""
    if select != "cube":
        return f"select={select} gives each query its own set, which blocks cannot express"
    volume = cube[0] * cube[1] * cube[2]
    tile = cube_tile(cube)
    if tile not in BLOCK_TILES:
        return (f"cube {'x'.join(map(str, cube))} holds {volume} tokens, units of {tile} slots, and flash-attn-4's "
                f"blocks take units of {' or '.join(map(str, BLOCK_TILES))} (cubes of 33-128 tokens)")
    return None


@cache
def _mask_mods() -> dict[int, object]:
    """The CuTe ``mask_mod`` for one and two cubes per query block: ``blocks.allowed`` on one (query slot, key
    slot) pair.

    aux tensors: query positions (B, S') and key positions (B, S') int32 of the slots, and for 64-token cubes the
    blocks' ``code`` (B, H, M, N) int32."""
    import cutlass
    import cutlass.cute as cute
    from flash_attn.cute import utils

    @cute.jit
    def causal_positions(batch, head, q_idx, kv_idx, seqlen_info, aux_tensors):
        """128-token cubes: one cube per query block, every listed block is read whole but for the causal edge."""
        q_pos = utils.scalar_to_ssa(aux_tensors[0][batch[0], q_idx[0]], cutlass.Int32)
        k_pos = utils.scalar_to_ssa(aux_tensors[1][batch[0], kv_idx[0]], cutlass.Int32)
        return k_pos <= q_pos

    @cute.jit
    def two_cubes(batch, head, q_idx, kv_idx, seqlen_info, aux_tensors):
        """64-token cubes, two per 128-slot query block over 64-slot key blocks: causal on positions, and the
        query's cube (bit ``q_idx // 64 % 2`` of the block's code) reads the key block."""
        q_pos = utils.scalar_to_ssa(aux_tensors[0][batch[0], q_idx[0]], cutlass.Int32)
        k_pos = utils.scalar_to_ssa(aux_tensors[1][batch[0], kv_idx[0]], cutlass.Int32)
        code = aux_tensors[2][batch[0], head[0], q_idx[0] // 128, kv_idx[0] // 64]
        bit = utils.scalar_to_ssa((code // (1 + (q_idx[0] // 64) % 2)) % 2, cutlass.Int32)  # bit 0 or 1 of code
        return (k_pos <= q_pos) & (bit > utils.scalar_to_ssa(0, cutlass.Int32))

    return {1: causal_positions, 2: two_cubes}


def block_sparse(query: Tensor, key: Tensor, value: Tensor, tables: BlockTables, tiles: CubeTiles,
                 scaling: float) -> Tensor:
    """flash-attn-4 over the blocks of ``tables`` (``blocks.block_attention`` computes the same in torch).

    Args:
        query: (B, H, S, D); key, value: (B, Hkv, S, D); bf16/fp16 on an sm90/sm100 GPU.
    Returns:
        (B, S, H, D).
    """
    from flash_attn.cute import flash_attn_func
    from flash_attn.cute.block_sparsity import BlockSparseTensorsTorch

    q_pos, k_pos = slot_padded(tiles, tables.query_block)
    q, k, v = (to_slots(x, q_pos) for x in (query, key, value))
    sparse = BlockSparseTensorsTorch(mask_block_cnt=tables.mask_cnt, mask_block_idx=tables.mask_idx,
                                     full_block_cnt=tables.full_cnt, full_block_idx=tables.full_idx,
                                     block_size=(tables.query_block, tables.tile))
    aux = [q_pos, k_pos] + ([tables.code] if tables.cubes > 1 else [])
    out, _ = flash_attn_func(q, k, v, softmax_scale=scaling, mask_mod=_mask_mods()[tables.cubes], aux_tensors=aux,
                             block_sparse_tensors=sparse, pack_gqa=False)
    return from_slots(out, q_pos, query.shape[2])


def fa4_attention(query: Tensor, key: Tensor, value: Tensor, layout: TokenLayout, tiles: CubeTiles,
                  rule: AttentionRule, scaling: float, state: ForwardState | None = None,
                  query_block: int = QUERY_BLOCK) -> tuple[Tensor, AttentionStats]:
    """AdaS-Attn (``select=cube``) of a prefill without padding: the project's selection, flash-attn-4's
    attention in query blocks of ``query_block`` slots. Shapes and statistics as
    ``kernels.attention.kernel_attention``, plus ``kept_units`` and ``block_units`` (the union's extra work)."""
    from adaspark_eval.sparse.kernels.attention import choosing_units, selection_stats
    from adaspark_eval.sparse.kernels.pairs import count_pairs
    from adaspark_eval.sparse.kernels.select import select_tiles

    query, key, value = (x if x.stride(-1) == 1 else x.contiguous() for x in (query, key, value))
    chooses = choosing_units(layout, rule.text_queries)
    selection = select_tiles(query, key, tiles, chooses, rule.select, rule.p, rule.fixed_ratio, scaling)
    reads = unit_reads(selection.lists, selection.counts, selection.full_counts, tiles)
    tables = build_block_tables(reads, tiles, query_block)
    output = block_sparse(query, key, value, tables, tiles, scaling)
    stats = selection_stats(selection, layout, rule, chooses, key.shape[1])
    stats.pairs = count_pairs(tiles, selection, state)
    stats.kept_units, stats.block_units = tables.kept_units, tables.block_units
    return output, stats


def dense(query: Tensor, key: Tensor, value: Tensor, scaling: float) -> Tensor:
    """Dense causal attention of a prefill on flash-attn-4: query (B, H, S, D), key/value (B, Hkv, S, D) ->
    (B, S, H, D)."""
    from flash_attn.cute import flash_attn_func

    out, _ = flash_attn_func(*(x.transpose(1, 2) for x in (query, key, value)), softmax_scale=scaling, causal=True)
    return out
