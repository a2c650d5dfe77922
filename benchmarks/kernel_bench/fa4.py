"""Sections of ``benchmarks/bench_fa4.py``: AdaS-Attn on flash-attn-4's block-sparse kernels (issue 24).

``check``: flash-attn-4's output against the same blocks in float32 torch (``blocks.block_attention``) and the
project's kernel, and dense flash-attn-4 against SDPA. ``attention``: one layer with real AdaSpark (``select=cube``,
fixed ratio) selections: dense cuDNN and flash-attn-4, the project's kernel, flash-attn-4 in 64 x 64 blocks
(64-token cubes, one per query block), 128 x 64 (two 64-token cubes per query block, their union) and 128 x 128
(128-token cubes of 4 x 4 x 8), each with its selection included and its attention alone. ``prefill``: the whole
7B-architecture prefill (random bf16 weights, ``models.fused`` ops): dense on cuDNN and on flash-attn-4, AdaSpark
on the project's kernel and on flash-attn-4 with 64- and 128-token cubes.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.models import fused
from adaspark_eval.sparse.kernels import fa4
from adaspark_eval.sparse.kernels.attention import choosing_units, kernel_attention
from adaspark_eval.sparse.kernels.blocks import (BlockTables, block_attention, build_block_tables, from_slots,
                                                  slot_padded, to_slots, unit_reads)
from adaspark_eval.sparse.kernels.flash import sparse_flash
from adaspark_eval.sparse.kernels.select import select_tiles
from adaspark_eval.sparse.kernels.tiles import build_tiles
from adaspark_eval.sparse.layout import build_layout
from adaspark_eval.sparse.runtime import SparseRuntime
from adaspark_eval.sparse.state import ForwardState
from benchmarks.kernel_bench.attention import dense_sdpa
from benchmarks.kernel_bench.common import (DENSITIES, HEAD_DIM, HEADS, KV_HEADS, VIDEO_TOKEN, build_7b, median_ms,
                                            qkv, relative_error, rule_of, video_inputs)

# (name, cube, query block): the flash-attn-4 block shapes the table compares
VARIANTS = [("fa4 64x64", (4, 4, 4), 64), ("fa4 128x64", (4, 4, 4), 128), ("fa4 128x128", (4, 4, 8), 128)]
PREFILL_SETTINGS = [
    ("dense cuDNN", dict(attention=False, ffn=False)),
    ("dense fa4", dict(attention=False, ffn=False, attn_impl="fa4")),
    ("adaspark kernel 4x4x4", dict(fixed_ratio=0.25, select="cube", backend="triton")),
    ("adaspark fa4 4x4x4", dict(fixed_ratio=0.25, select="cube", backend="fa4")),
    ("adaspark fa4 4x4x8", dict(fixed_ratio=0.25, select="cube", backend="fa4", cube=(4, 4, 8))),
]


def layout_of(tokens: int, cube: tuple[int, int, int], device: torch.device):
    ids, grid = video_inputs(tokens, device)
    return build_layout(ids, video_token_id=VIDEO_TOKEN, image_token_id=-1, cube=cube, video_grid_thw=grid)


def fa4_layer(q, k, v, layout, tiles, rule, scale, query_block):
    """The pieces of ``fa4.fa4_attention``: (selection, tables) for timing them apart."""
    chooses = choosing_units(layout, rule.text_queries)
    selection = select_tiles(q, k, tiles, chooses, rule.select, rule.p, rule.fixed_ratio, scale)
    tables = build_block_tables(unit_reads(selection.lists, selection.counts, selection.full_counts, tiles), tiles,
                                query_block)
    return chooses, selection, tables


def check_section(device: torch.device, tokens: int = 4352) -> list[dict[str, Any]]:
    """flash-attn-4 against float32 torch on the same blocks (4 query / 1 KV heads) and against the project's
    kernel (28 / 4 heads); dense flash-attn-4 against SDPA."""
    rows = []
    scale = HEAD_DIM**-0.5
    for name, cube, query_block in VARIANTS:
        row: dict[str, Any] = {"variant": name, "tokens": tokens}
        try:
            layout = layout_of(tokens, cube, device)
            tiles = build_tiles(layout, "all")
            for heads, kv_heads in ((4, 1), (HEADS, KV_HEADS)):
                q, k, v = qkv(layout, heads, kv_heads, HEAD_DIM, torch.bfloat16)
                rule = rule_of("cube", 1.0, 0.25)
                _, _, tables = fa4_layer(q, k, v, layout, tiles, rule, scale, query_block)
                got = fa4.block_sparse(q, k, v, tables, tiles, scale)
                if heads == 4:
                    expected = block_attention(q.float(), k.float(), v.float(), tables, tiles, scale)
                    row["vs_float32_blocks"] = relative_error(got, expected)
                else:
                    kernel_out, _ = kernel_attention(q, k, v, layout, tiles, rule, scale)
                    full_out, stats = fa4.fa4_attention(q, k, v, layout, tiles, rule, scale, None, query_block)
                    row["vs_project_kernel"] = relative_error(got, kernel_out)
                    row["fa4_attention_vs_blocks"] = relative_error(full_out, got)
                    row["union_over_kept"] = float(stats.block_units.sum() / stats.kept_units.sum())
        except Exception as error:  # noqa: BLE001 (recorded, not fatal: the other rows still run)
            row["error"] = repr(error)[:800]
        rows.append(row)
        print(f"  check {row}", flush=True)
    layout = layout_of(tokens, (4, 4, 4), device)
    q, k, v = qkv(layout, HEADS, KV_HEADS, HEAD_DIM, torch.bfloat16)
    row = {"variant": "dense fa4", "tokens": tokens}
    try:
        with sdpa_kernel(SDPBackend.MATH):
            expected = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                                                        scale=scale, enable_gqa=True)
        row["vs_float32_sdpa"] = relative_error(fa4.dense(q, k, v, scale), expected.transpose(1, 2))
    except Exception as error:  # noqa: BLE001
        row["error"] = repr(error)[:800]
    rows.append(row)
    print(f"  check {row}", flush=True)
    return rows


def attention_section(tokens: int, device: torch.device) -> dict[str, Any]:
    """One layer at ``tokens``: dense baselines, then per density the project's kernel and each variant."""
    scale = HEAD_DIM**-0.5
    base = layout_of(tokens, (4, 4, 4), device)
    q, k, v = qkv(base, HEADS, KV_HEADS, HEAD_DIM, torch.bfloat16)
    result: dict[str, Any] = {"tokens": tokens, "cudnn_ms": median_ms(dense_sdpa(q, k, v, SDPBackend.CUDNN_ATTENTION))}
    try:
        result["fa4_dense_ms"] = median_ms(functools.partial(fa4.dense, q, k, v, scale))
    except Exception as error:  # noqa: BLE001
        result["fa4_dense_error"] = repr(error)[:800]
    dense_pairs = HEADS * tokens * (tokens + 1) / 2
    tiles = build_tiles(base, "all")
    state = ForwardState(base)
    runs = []
    for ratio in DENSITIES:
        rule = rule_of("cube", 1.0, ratio)
        chooses = choosing_units(base, "dense")
        selection = select_tiles(q, k, tiles, chooses, "cube", 1.0, ratio, scale)
        _, stats = kernel_attention(q, k, v, base, tiles, rule, scale, state)
        run = {"density": ratio, "variant": "kernel", "kept_fraction": float(stats.kept_fraction.mean()),
               "pairs": float(stats.pairs.sum()) / dense_pairs,
               "total_ms": median_ms(functools.partial(kernel_attention, q, k, v, base, tiles, rule, scale, state)),
               "selection_ms": median_ms(functools.partial(select_tiles, q, k, tiles, chooses, "cube", 1.0, ratio,
                                                           scale)),
               "attention_ms": median_ms(functools.partial(sparse_flash, q, k, v, tiles, selection, scale))}
        runs.append(run)
        print(f"  {tokens} {run}", flush=True)
        for name, cube, query_block in VARIANTS:
            run = {"density": ratio, "variant": name}
            try:
                layout = base if cube == (4, 4, 4) else layout_of(tokens, cube, device)
                vtiles = tiles if cube == (4, 4, 4) else build_tiles(layout, "all")
                vstate = state if cube == (4, 4, 4) else ForwardState(layout)
                _, vsel, tables = fa4_layer(q, k, v, layout, vtiles, rule, scale, query_block)
                _, vstats = fa4.fa4_attention(q, k, v, layout, vtiles, rule, scale, vstate, query_block)
                vchooses = choosing_units(layout, "dense")
                run.update(
                    kept_fraction=float(vstats.kept_fraction.mean()), pairs=float(vstats.pairs.sum()) / dense_pairs,
                    union_over_kept=float(tables.block_units.sum() / tables.kept_units.sum()),
                    total_ms=median_ms(functools.partial(fa4.fa4_attention, q, k, v, layout, vtiles, rule, scale,
                                                         vstate, query_block)),
                    selection_ms=median_ms(functools.partial(select_tiles, q, k, vtiles, vchooses, "cube", 1.0, ratio,
                                                             scale)),
                    tables_ms=median_ms(functools.partial(
                        lambda s: build_block_tables(unit_reads(s.lists, s.counts, s.full_counts, vtiles), vtiles,
                                                     query_block), vsel)),
                    attention_ms=median_ms(functools.partial(fa4.block_sparse, q, k, v, tables, vtiles, scale)))
            except Exception as error:  # noqa: BLE001
                run["error"] = repr(error)[:800]
            runs.append(run)
            print(f"  {tokens} {run}", flush=True)
    result["runs"] = runs
    return result


def prefill_section(lengths: list[int], device: torch.device, deadline: float) -> list[dict[str, Any]]:
    """Whole prefills, fused ops; one warm-up forward and ``timed`` forwards per row (median). Lengths whose
    turn comes after ``deadline`` (time.monotonic) are skipped and recorded so."""
    model = build_7b(device)
    fused.fuse(model)
    rows = []
    for tokens in lengths:
        if time.monotonic() > deadline:
            rows.append({"tokens": tokens, "skipped": "out of the call's time"})
            continue
        ids, grid = video_inputs(tokens, device)
        forward = functools.partial(model, input_ids=ids, video_grid_thw=grid, logits_to_keep=1, use_cache=False)
        timed = 3 if tokens <= 16384 else 1
        for name, setting in PREFILL_SETTINGS:
            row: dict[str, Any] = {"tokens": tokens, "setting": name}
            sparse = SparseRuntime.attach(model, AdaSparkConfig(**setting)) if name != "dense cuDNN" else None
            try:
                with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION],
                                                   set_priority=True):
                    forward()
                    torch.cuda.synchronize()
                    times = []
                    for _ in range(timed):
                        start = time.perf_counter()
                        forward()
                        torch.cuda.synchronize()
                        times.append((time.perf_counter() - start) * 1e3)
                row["ms"] = sorted(times)[len(times) // 2]
                if sparse is not None:
                    flops = count_sample(model.config, sparse.records, video_grid_thw=grid).llm_prefill
                    row.update(flop_actual=flops.actual, flop_dense=flops.dense, flop_ratio=flops.dense / flops.actual)
                    work = sparse.records[0].block_work()
                    if work:
                        row["union_over_kept"] = work["block_units"] / work["kept_units"]
            except Exception as error:  # noqa: BLE001
                row["error"] = repr(error)[:800]
            if sparse is not None:
                sparse.detach()
            rows.append(row)
            print(f"  prefill {row}", flush=True)
    fused.unfuse(model)
    return rows


def breakdown_section(tokens: int, device: torch.device) -> list[dict[str, Any]]:
    """Where the 128 x 128 path's time goes at ``tokens``, per density: the selection, the read sets and the
    block tables apart, the slot-order copies in and out, flash-attn-4 alone on slot-ordered inputs, and
    flash-attn-4 with every listed block taken as full (no ``mask_mod``: wrong output, the mask blocks' cost)."""
    from flash_attn.cute import flash_attn_func
    from flash_attn.cute.block_sparsity import BlockSparseTensorsTorch

    scale = HEAD_DIM**-0.5
    layout = layout_of(tokens, (4, 4, 8), device)
    q, k, v = qkv(layout, HEADS, KV_HEADS, HEAD_DIM, torch.bfloat16)
    tiles = build_tiles(layout, "all")
    q_pos, k_pos = slot_padded(tiles)
    qs, ks, vs = (to_slots(x, q_pos) for x in (q, k, v))
    rows = []
    for ratio in DENSITIES:
        rule = rule_of("cube", 1.0, ratio)
        chooses, selection, tables = fa4_layer(q, k, v, layout, tiles, rule, scale, 128)
        reads = unit_reads(selection.lists, selection.counts, selection.full_counts, tiles)

        def run(t: BlockTables, mask_mod, tensors=(qs, ks, vs)):
            sparse = BlockSparseTensorsTorch(mask_block_cnt=t.mask_cnt, mask_block_idx=t.mask_idx,
                                             full_block_cnt=t.full_cnt, full_block_idx=t.full_idx,
                                             block_size=(128, 128))
            return flash_attn_func(*tensors, softmax_scale=scale, mask_mod=mask_mod,
                                   aux_tensors=[q_pos, k_pos] if mask_mod is not None else None,
                                   block_sparse_tensors=sparse, pack_gqa=False)

        listed = torch.zeros_like(tables.full_cnt)
        merged = tables.__class__(full_cnt=tables.full_cnt + tables.mask_cnt, full_idx=_merged_idx(tables),
                                  mask_cnt=listed, mask_idx=tables.mask_idx, code=tables.code, cubes=1, tile=128,
                                  kept_units=tables.kept_units, block_units=tables.block_units)
        mask_mod = fa4._mask_mods()[1]
        out_slots = run(tables, mask_mod)[0]
        row = {"density": ratio, "tokens": tokens,
               "mask_block_fraction": float(tables.mask_cnt.sum() / (tables.mask_cnt + tables.full_cnt).sum()),
               "selection_ms": median_ms(functools.partial(select_tiles, q, k, tiles, chooses, "cube", 1.0, ratio,
                                                           scale)),
               "reads_ms": median_ms(functools.partial(unit_reads, selection.lists, selection.counts,
                                                       selection.full_counts, tiles)),
               "tables_ms": median_ms(functools.partial(build_block_tables, reads, tiles, 128)),
               "to_slots_ms": median_ms(lambda: [to_slots(x, q_pos) for x in (q, k, v)]),
               "from_slots_ms": median_ms(functools.partial(from_slots, out_slots, q_pos, tokens)),
               "to_slots_elementwise_ms": median_ms(lambda: [_elementwise_to_slots(x, q_pos) for x in (q, k, v)]),
               "from_slots_elementwise_ms": median_ms(functools.partial(_elementwise_from_slots, out_slots, q_pos,
                                                                        tokens)),
               "fa4_ms": median_ms(functools.partial(run, tables, mask_mod)),
               "fa4_contiguous_ms": median_ms(functools.partial(run, tables, mask_mod,
                                                                tuple(x.contiguous() for x in (qs, ks, vs))))}
        try:
            row["fa4_all_full_ms"] = median_ms(functools.partial(run, merged, None))
        except Exception as error:  # noqa: BLE001 (recorded, not fatal)
            row["fa4_all_full_ms"], row["error"] = None, repr(error)[:800]
        rows.append(row)
        print(f"  breakdown {row}", flush=True)
    return rows


def _elementwise_to_slots(x: torch.Tensor, q_pos: torch.Tensor) -> torch.Tensor:
    """The slot-order copy in as first written (``torch.gather`` with an int64 index expanded over every
    element), kept for the side-by-side with ``blocks.to_slots``' row gather."""
    bsz, heads, _, dim = x.shape
    index = q_pos.clamp_min(0).long()[:, :, None, None].expand(bsz, q_pos.shape[1], heads, dim)
    return torch.gather(x.transpose(1, 2), 1, index)


def _elementwise_from_slots(out: torch.Tensor, q_pos: torch.Tensor, seq: int) -> torch.Tensor:
    """The copy out as first written (zeros, then ``scatter_`` with an expanded int64 index), for the
    side-by-side with ``blocks.from_slots``."""
    bsz, slots, heads, dim = out.shape
    target = torch.where(q_pos >= 0, q_pos, seq).long()[:, :, None, None].expand(bsz, slots, heads, dim)
    back = out.new_zeros(bsz, seq + 1, heads, dim)
    back.scatter_(1, target, out)
    return back[:, :seq]


def _merged_idx(tables: BlockTables) -> torch.Tensor:
    """Full then mask block indices of each query block in one list (the blocks an all-full run reads)."""
    width = tables.full_idx.shape[-1]
    entry = torch.arange(width, device=tables.full_idx.device)
    full_on = entry < tables.full_cnt[..., None]
    mask_on = entry < tables.mask_cnt[..., None]
    chosen = torch.zeros(*tables.full_idx.shape[:-1], width + 1, dtype=torch.bool, device=tables.full_idx.device)
    chosen.scatter_(-1, torch.where(full_on, tables.full_idx.long(), width), True)
    chosen.scatter_(-1, torch.where(mask_on, tables.mask_idx.long(), width), True)
    chosen = chosen[..., :width]
    rank = torch.cumsum(chosen, dim=-1, dtype=torch.int32) - 1
    index = torch.zeros(*chosen.shape[:-1], width + 1, dtype=torch.int32, device=chosen.device)
    index.scatter_(-1, torch.where(chosen, rank, width).long(),
                   torch.arange(width, dtype=torch.int32, device=chosen.device).expand_as(chosen))
    return index[..., :width].contiguous()
