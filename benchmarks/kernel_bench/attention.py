"""Section ``attention``: one layer at each length, dense SDPA on cuDNN and flash, FlexAttention with the
kernel's block mask, and the AdaS-Attn kernel with its selection included and alone."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

from adaspark_eval.sparse.kernels.attention import choosing_units, kernel_attention
from adaspark_eval.sparse.kernels.flash import slot_order, sparse_flash
from adaspark_eval.sparse.kernels.pairs import cube_pair_tables
from adaspark_eval.sparse.kernels.select import select_tiles
from adaspark_eval.sparse.kernels.tiles import CubeTiles, build_tiles
from adaspark_eval.sparse.layout import TokenLayout
from adaspark_eval.sparse.state import ForwardState
from benchmarks.kernel_bench.common import (
    DENSITIES,
    HEAD_DIM,
    HEADS,
    KV_HEADS,
    bench_layout,
    median_ms,
    qkv,
    relative_error,
    rule_of,
)


def compiled_flex() -> Callable[..., Tensor]:
    """FlexAttention compiled for fixed shapes (it compiles again at each length), in blocks of 64 x 64."""
    from torch.nn.attention.flex_attention import flex_attention

    compiled = torch.compile(flex_attention, dynamic=False)
    return functools.partial(compiled, kernel_options={"BLOCK_M": 64, "BLOCK_N": 64})


def dense_sdpa(q: Tensor, k: Tensor, v: Tensor, backend: SDPBackend) -> Callable[[], Tensor]:
    """A dense causal SDPA call on ``backend`` (GQA native where the backend takes it, else K/V repeated)."""
    def native() -> Tensor:
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

    try:
        native()
        return native
    except RuntimeError:
        k_full, v_full = (x.repeat_interleave(q.shape[1] // x.shape[1], dim=1) for x in (k, v))

        def repeated() -> Tensor:
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k_full, v_full, is_causal=True)

        repeated()
        return repeated


def flex_block_mask(tiles: CubeTiles, layout: TokenLayout, lists: Tensor, counts: Tensor, full_counts: Tensor):
    """FlexAttention ``BlockMask`` (in slot order, blocks of one tile) reading exactly the kernel's tiles:
    listed columns and visible fixed units; blocks wholly before the query tile need no ``mask_mod``."""
    from torch.nn.attention.flex_attention import BlockMask

    bsz, heads, units, cols = lists.shape
    tile = tiles.tile
    entry = torch.arange(cols, device=lists.device)
    listed = (entry < full_counts[..., None]) | (entry >= cols - (counts - full_counts)[..., None])
    columns = torch.where(listed, lists, 0).long()  # entries past a tile's count are unwritten
    unit_ids = tiles.columns[:, None, None, :].expand(-1, heads, units, -1).gather(3, columns)
    fixed = tiles.fixed[:, None, None, :].expand(-1, heads, units, -1).long()
    fixed_on = torch.arange(fixed.shape[-1], device=lists.device) < tiles.fixed_visible[:, None, :, None]
    blocks = torch.cat([unit_ids, fixed], dim=-1)
    valid = torch.cat([listed, fixed_on.expand(-1, heads, -1, -1)], dim=-1)
    first, last = tiles.unit_first.long(), tiles.unit_last.long()
    whole = layout.unit_size.gather(1, blocks.flatten(1).clamp_max(units - 1)).view_as(blocks) == tile
    before = last.gather(1, blocks.flatten(1)).view_as(blocks) <= first[:, None, :, None]
    full = valid & whole & before
    partial = valid & ~full

    def packed(chosen: Tensor) -> tuple[Tensor, Tensor]:
        order = torch.argsort((~chosen).to(torch.int8), dim=-1, stable=True)
        indices = torch.zeros(bsz, heads, units, units, dtype=torch.int32, device=lists.device)
        width = min(units, blocks.shape[-1])
        indices[..., :width] = blocks.gather(-1, order)[..., :width].to(torch.int32)
        return chosen.sum(-1).to(torch.int32), indices

    qpos, kpos = tiles.slot_pos, tiles.key_pos

    def mask_mod(b, h, q_idx, kv_idx):
        return kpos[b, kv_idx] <= qpos[b, q_idx]

    num, idx = packed(partial)
    full_num, full_idx = packed(full)
    return BlockMask.from_kv_blocks(num, idx, full_num, full_idx, BLOCK_SIZE=tile, mask_mod=mask_mod,
                                    seq_lengths=(units * tile, units * tile))


def attention_section(tokens: int, device: torch.device, flex: Callable[..., Tensor] | None) -> dict[str, Any]:
    layout = bench_layout(tokens, device)
    q, k, v = qkv(layout, HEADS, KV_HEADS, HEAD_DIM, torch.bfloat16)
    scale = HEAD_DIM**-0.5
    result: dict[str, Any] = {"tokens": tokens, "units": layout.num_units}
    for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
        try:
            result[f"{name}_ms"] = median_ms(dense_sdpa(q, k, v, backend))
        except RuntimeError as error:  # a baseline that fails is recorded, not fatal
            result[f"{name}_ms"], result[f"{name}_error"] = math.nan, repr(error)[:500]
    result["tiles_ms"] = median_ms(lambda: build_tiles(layout, "all"))
    tiles = build_tiles(layout, "all")
    result["pair_tables_ms"] = median_ms(lambda: cube_pair_tables(tiles))
    chooses = choosing_units(layout, "dense")
    state = ForwardState(layout)  # the pair tables built once, as for the layers of a forward
    flex_inputs = [slot_order(x, tiles) for x in (q, k, v)] if flex is not None else None
    runs = []
    settings = [(select, 1.0, d) for select in ("cube", "token") for d in DENSITIES]
    settings += [(select, 0.9, None) for select in ("cube", "token")]
    for select, p, ratio in settings:
        rule = rule_of(select, p, ratio)
        out, stats = kernel_attention(q, k, v, layout, tiles, rule, scale, state)
        selection = select_tiles(q, k, tiles, chooses, select, p, ratio, scale)
        visible = (tiles.col_first[:, None, :] <= tiles.unit_last[:, :, None]).sum(-1)  # (B, U)
        choosing = chooses.bool()[:, None, :].expand_as(selection.counts)
        run = {
            "select": select, "p": p, "fixed_ratio": ratio,
            "kept_fraction": float(stats.kept_fraction.mean()),
            "tile_read_fraction": float((selection.counts / visible[:, None].clamp_min(1))[choosing].mean()),
            "pair_fraction": float(stats.pairs) / (HEADS * tokens * (tokens + 1) / 2),
            "total_ms": median_ms(functools.partial(kernel_attention, q, k, v, layout, tiles, rule, scale, state)),
            "selection_ms": median_ms(functools.partial(select_tiles, q, k, tiles, chooses, select, p, ratio, scale)),
            "flash_ms": median_ms(functools.partial(sparse_flash, q, k, v, tiles, selection, scale)),
        }
        if flex is not None and select == "cube":
            try:
                mask = flex_block_mask(tiles, layout, selection.lists, selection.counts, selection.full_counts)
                flex_out = flex(*flex_inputs, block_mask=mask, scale=scale, enable_gqa=True)
                run["flex_ms"] = median_ms(functools.partial(flex, *flex_inputs, block_mask=mask, scale=scale,
                                                             enable_gqa=True))
                real = tiles.slot_pos[0] >= 0
                flex_rows = flex_out[0][:, real].transpose(0, 1)
                run["flex_vs_kernel_relative_error"] = relative_error(flex_rows, out[0][tiles.slot_pos[0][real].long()])
            except Exception as error:  # noqa: BLE001 (a failing baseline is recorded, not fatal)
                run["flex_error"] = repr(error)[:500]
        runs.append(run)
        print(f"  {tokens} {select} p={p} ratio={ratio}: {run}", flush=True)
    result["runs"] = runs
    return result
