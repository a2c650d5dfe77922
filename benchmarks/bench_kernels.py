"""AdaSpark kernel benchmarks on one GPU (issue 7), at Qwen2.5-VL-7B's shapes.

    PYTHONPATH=. python3 benchmarks/bench_kernels.py --out OUT_DIR [--lengths 16384 32768 65536]
        [--sections check,ffn --update benchmarks/bench_kernels.json]

Sections (``--sections``): ``check`` (kernels against the reference on the GPU), ``launch`` (the attention
kernel under each launch configuration at the longest length; the fastest is used from then on), ``attention`` (dense SDPA on
cuDNN and flash, FlexAttention with the kernel's block mask, the AdaS-Attn kernel with its selection
included and alone), ``ffn`` (dense MLP, sparse FFN), ``prefill`` (a whole 7B-architecture prefill with
random bf16 weights, dense vs AdaSpark, with peak memory, with transformers' eager elementwise ops and with
``models.fused``). Times are medians of
``triton.testing.do_bench`` (CUDA events, L2 flushed between runs). Writes ``bench_kernels.json`` and
``RESULTS.md`` to ``OUT_DIR``; with ``--update FILE`` the sections run replace theirs in an earlier
``bench_kernels.json``, the others are kept, and the report names each rerun.

A sequence of ``L`` tokens is 192 text tokens, one video of ``(L - 256) / 256`` temporal groups of 16 x 16
LLM tokens (448 x 448 frames) and 64 text tokens; cubes are 4 x 4 x 4.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
import triton
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel
from triton.testing import do_bench

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.flops.dims import known_config
from adaspark_eval.models import fused
from adaspark_eval.sparse import ffn as reference_ffn
from adaspark_eval.sparse.attention import AttentionRule, select_units, sparse_attention
from adaspark_eval.sparse.kernels import ffn as kernel_ffn
from adaspark_eval.sparse.kernels.attention import choosing_units, kernel_attention
from adaspark_eval.sparse.kernels import flash
from adaspark_eval.sparse.kernels.flash import FlashLaunch, slot_order, sparse_flash
from adaspark_eval.sparse.kernels.pairs import cube_pair_tables
from adaspark_eval.sparse.kernels.select import select_tiles
from adaspark_eval.sparse.kernels.tiles import CubeTiles, build_tiles
from adaspark_eval.sparse.layout import TokenLayout, build_layout
from adaspark_eval.sparse.qwen2_5_vl import SparseRuntime
from adaspark_eval.sparse.state import ForwardState

HEADS, KV_HEADS, HEAD_DIM = 28, 4, 128
HIDDEN, INTERMEDIATE = 3584, 18944
VIDEO_TOKEN, VISION_START, VISION_END = 151656, 151652, 151653
PREFIX, SUFFIX, FRAME = 192, 64, 16  # text tokens before / after the video; LLM tokens per frame side
CUBE = (4, 4, 4)
DENSITIES = (0.5, 0.25, 0.1)
LONGEST = PREFIX + SUFFIX + 511 * FRAME * FRAME  # 131,072 tokens: 2,048 candidate cubes
FFN_FRACTIONS = (0.75, 0.5, 0.25)


def median_ms(fn: Callable[[], Any], rep: int = 300) -> float:
    """Median time of ``fn`` in ms (do_bench: warm-up, CUDA events, L2 flushed between runs)."""
    return float(do_bench(fn, warmup=50, rep=rep, return_mode="median"))


def video_inputs(tokens: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """input_ids (1, tokens) and video_grid_thw (1, 3) of the benchmark sequence (see the module doc)."""
    groups = (tokens - PREFIX - SUFFIX) // (FRAME * FRAME)
    if groups * FRAME * FRAME + PREFIX + SUFFIX != tokens:
        raise SystemExit(f"--lengths: {tokens} - {PREFIX + SUFFIX} must be a multiple of {FRAME * FRAME}")
    gen = torch.Generator().manual_seed(tokens)
    text = torch.randint(0, 150000, (PREFIX + SUFFIX,), generator=gen)
    ids = torch.cat([text[: PREFIX - 1], torch.tensor([VISION_START]),
                     torch.full((groups * FRAME * FRAME,), VIDEO_TOKEN), torch.tensor([VISION_END]),
                     text[PREFIX - 1 : -2]])
    return ids[None].to(device), torch.tensor([[groups, 2 * FRAME, 2 * FRAME]], device=device)


def bench_layout(tokens: int, device: torch.device) -> TokenLayout:
    ids, grid = video_inputs(tokens, device)
    return build_layout(ids, video_token_id=VIDEO_TOKEN, image_token_id=-1, cube=CUBE, video_grid_thw=grid)


def cube_structured(layout: TokenLayout, heads: int, dim: int, noise: float, dtype: torch.dtype,
                    gen: torch.Generator) -> Tensor:
    """(1, heads, S, dim): a random vector per (head, unit) plus ``noise`` times a random vector per token, so
    that tokens of one cube are alike, as in real video."""
    device = layout.unit.device
    base = torch.randn(1, heads, layout.num_units, dim, device=device, generator=gen)
    token = torch.randn(1, heads, layout.seq_len, dim, device=device, generator=gen)
    return (base[:, :, layout.unit[0].clamp_min(0)] + noise * token).to(dtype)


def qkv(layout: TokenLayout, heads: int, kv_heads: int, dim: int, dtype: torch.dtype) -> tuple[Tensor, ...]:
    gen = torch.Generator(device=layout.unit.device).manual_seed(0)
    q = cube_structured(layout, heads, dim, 0.5, dtype, gen)
    k = cube_structured(layout, kv_heads, dim, 1.0, dtype, gen)
    v = torch.randn(1, kv_heads, layout.seq_len, dim, device=layout.unit.device, generator=gen).to(dtype)
    return q, k, v


def rule_of(select: str, p: float, fixed_ratio: float | None) -> AttentionRule:
    return AttentionRule(p=p, fixed_ratio=fixed_ratio, select=select, text_queries="dense", text_keys="all",
                         decode=False, sparse_decode=False)


def relative_error(a: Tensor, b: Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


# ---------------------------------------------------------------------------------------------- check


def check_section(device: torch.device) -> list[dict[str, Any]]:
    """Kernels against the reference on the GPU: kept fractions, pairs, outputs (bf16 D=128, fp16 D=64)."""
    rows = []
    rules = [(select, p, ratio) for select in ("token", "cube") for p, ratio in ((0.5, None), (1.0, 0.25), (1.0, None))]
    short = PREFIX + SUFFIX + 16 * FRAME * FRAME
    shapes = ((short, torch.bfloat16, HEADS, KV_HEADS, HEAD_DIM, rules),
              (short, torch.float16, 16, 2, 64, [("token", 0.5, None), ("cube", 1.0, 0.25)]),
              # the most candidate cubes the kernels take (dispatch.MAX_COLUMNS), on 4 query heads
              (LONGEST, torch.bfloat16, 4, 1, HEAD_DIM, [("token", 1.0, 0.25), ("cube", 0.9, None)]))
    for tokens, dtype, heads, kv_heads, dim, cases in shapes:
        layout = bench_layout(tokens, device)
        q, k, v = qkv(layout, heads, kv_heads, dim, dtype)
        tiles = build_tiles(layout, "all")
        for select, p, ratio in cases:
            rule = rule_of(select, p, ratio)
            out, stats = kernel_attention(q, k, v, layout, tiles, rule, dim**-0.5)
            ref_sel = select_units(q, k, layout, rule, dim**-0.5, chunk=512)
            ref_out, ref_pairs = sparse_attention(q.float(), k.float(), v.float(), None, ref_sel, layout.unit,
                                                  dim**-0.5)
            rows.append({
                "dtype": str(dtype).removeprefix("torch."), "head_dim": dim, "select": select, "p": p,
                "fixed_ratio": ratio, "tokens": layout.seq_len,
                "kept_fraction": float(stats.kept_fraction.mean()),
                "reference_kept_fraction": float(ref_sel.stats.kept_fraction.mean()),
                "pairs": int(stats.pairs), "reference_pairs": int(ref_pairs),
                "output_relative_error": relative_error(out, ref_out),
            })
    layout = bench_layout(PREFIX + SUFFIX + 16 * FRAME * FRAME, device)
    gen = torch.Generator(device=device).manual_seed(1)
    residual, hidden = (torch.randn(1, layout.seq_len, HIDDEN, device=device, generator=gen).bfloat16()
                        for _ in range(2))
    mlp = random_mlp(device, scale=0.02)
    groups = reference_ffn.group_ids(layout, "cube")
    for ratio in (None, 0.25):
        rule = ffn_rule(0.6 if ratio is None else 1.0, ratio)
        keep = kernel_ffn.keep_tokens(residual, groups, rule)
        ref_keep = reference_ffn.keep_tokens(residual, groups, rule)
        out = kernel_ffn.sparse_ffn(mlp, hidden, keep, groups, "mean")
        ref_out = reference_ffn.sparse_ffn(mlp, hidden, ref_keep, groups, "mean")
        rows.append({"ffn": True, "fixed_ratio": ratio, "tokens": layout.seq_len,
                     "keep_equal": bool(torch.equal(keep, ref_keep)), "active_fraction": float(keep.float().mean()),
                     "output_relative_error": relative_error(out, ref_out)})
    return rows + fused_check(residual, hidden)


def fused_check(residual: Tensor, hidden: Tensor) -> list[dict[str, Any]]:
    """``models.fused`` kernels against transformers' eager ops in bf16 on the GPU: identical elements."""
    gen = torch.Generator(device=hidden.device).manual_seed(3)
    eager_rms_norm = transformers.models.qwen2_5_vl.modeling_qwen2_5_vl.Qwen2_5_VLRMSNorm
    norm = eager_rms_norm(HIDDEN, eps=1e-6).to(hidden.device, torch.bfloat16)
    norm.weight.data = torch.randn(HIDDEN, device=hidden.device, generator=gen).bfloat16()
    q, k = (x.view(1, x.shape[1], -1, HEAD_DIM).transpose(1, 2) for x in (hidden[..., :HEADS * HEAD_DIM],
                                                                         residual[..., :KV_HEADS * HEAD_DIM]))
    cos, sin = (torch.randn(1, hidden.shape[1], HEAD_DIM, device=hidden.device, generator=gen).bfloat16()
                for _ in range(2))
    gate, up = hidden[..., :HIDDEN // 2], residual[..., HIDDEN // 2:]
    pairs = {"rms_norm": (fused.rms_norm(residual, norm.weight, 1e-6), norm(residual)),
             "rotary q": (fused.apply_rotary_pos_emb(q, k, cos, sin)[0], fused.ORIGINAL_ROTARY(q, k, cos, sin)[0]),
             "silu_mul": (fused.silu_mul(gate, up), torch.nn.functional.silu(gate) * up)}
    return [{"fused": name, "identical_fraction": float((got == want).float().mean()),
             "output_relative_error": relative_error(got, want)} for name, (got, want) in pairs.items()]


# ------------------------------------------------------------------------------------------ attention


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


LAUNCHES = [FlashLaunch(False, 4, 2), FlashLaunch(False, 4, 3), FlashLaunch(True, 4, 2), FlashLaunch(True, 4, 3),
            FlashLaunch(True, 4, 4)]


def launch_section(tokens: int, device: torch.device) -> dict[str, Any]:
    """The attention kernel (selection given) under each of ``LAUNCHES``, select=cube at every density, and the
    launch with the least total time. The other sections run the model's own launch (``flash.default_launch``)."""
    layout = bench_layout(tokens, device)
    q, k, v = qkv(layout, HEADS, KV_HEADS, HEAD_DIM, torch.bfloat16)
    scale = HEAD_DIM**-0.5
    tiles = build_tiles(layout, "all")
    chooses = choosing_units(layout, "dense")
    rows = []
    for ratio in DENSITIES:
        selection = select_tiles(q, k, tiles, chooses, "cube", 1.0, ratio, scale)
        reference = sparse_flash(q, k, v, tiles, selection, scale, FlashLaunch())
        for launch in LAUNCHES:
            out = sparse_flash(q, k, v, tiles, selection, scale, launch)
            rows.append({"fixed_ratio": ratio, **launch._asdict(), "relative_error": relative_error(out, reference),
                         "ms": median_ms(functools.partial(sparse_flash, q, k, v, tiles, selection, scale, launch))})
            print(f"  launch {tokens} {rows[-1]}", flush=True)
    totals = {launch: sum(r["ms"] for r in rows if FlashLaunch(r["tma"], r["num_warps"], r["num_stages"]) == launch)
              for launch in LAUNCHES}
    return {"tokens": tokens, "rows": rows, "fastest": min(totals, key=totals.get)._asdict(),
            "default": flash.default_launch(device)._asdict()}


# ------------------------------------------------------------------------------------------------ ffn


def random_mlp(device: torch.device, scale: float) -> Callable[[Tensor], Tensor]:
    """A Qwen2 MLP (gate/up 3584 -> 18944, SiLU, down) with random bf16 weights."""
    gen = torch.Generator(device=device).manual_seed(2)
    gate, up = (torch.randn(INTERMEDIATE, HIDDEN, device=device, generator=gen).mul_(scale).bfloat16()
                for _ in range(2))
    down = torch.randn(HIDDEN, INTERMEDIATE, device=device, generator=gen).mul_(scale).bfloat16()
    return lambda x: F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


def ffn_rule(p: float, fixed_ratio: float | None) -> reference_ffn.FfnRule:
    return reference_ffn.FfnRule(p=p, fixed_ratio=fixed_ratio, group="cube", score="l1", tau=1.0,
                                 compensation="mean")


def ffn_section(tokens: int, device: torch.device) -> dict[str, Any]:
    layout = bench_layout(tokens, device)
    gen = torch.Generator(device=device).manual_seed(3)
    residual, hidden = (torch.randn(1, tokens, HIDDEN, device=device, generator=gen).bfloat16() for _ in range(2))
    mlp = random_mlp(device, scale=0.02)
    groups = reference_ffn.group_ids(layout, "cube")
    result: dict[str, Any] = {"tokens": tokens, "dense_ms": median_ms(lambda: mlp(hidden)),
                              "group_lists_ms": median_ms(functools.partial(kernel_ffn.build_members, groups))}
    state = ForwardState(layout)  # the group lists built once, as for the layers of a forward
    runs = []
    for fraction in FFN_FRACTIONS:
        rule = ffn_rule(1.0, fraction)
        keep = kernel_ffn.keep_tokens(residual, groups, rule, state)
        active = hidden[keep]
        kept = reference_ffn.fixed_ratio_kept(groups, fraction)  # as the model counts, once per forward
        assert kept == active.shape[0]
        run = {
            "fixed_ratio": fraction, "active_fraction": float(keep.float().mean()),
            "keep_ms": median_ms(functools.partial(kernel_ffn.keep_tokens, residual, groups, rule, state)),
            "sparse_ffn_ms": median_ms(functools.partial(kernel_ffn.sparse_ffn, mlp, hidden, keep, groups, "mean",
                                                         kept, state)),
            "mlp_on_active_ms": median_ms(functools.partial(mlp, active)),
            "reference_keep_ms": median_ms(functools.partial(reference_ffn.keep_tokens, residual, groups, rule)),
            "reference_sparse_ffn_ms": median_ms(functools.partial(reference_ffn.sparse_ffn, mlp, hidden, keep, groups,
                                                                   "mean")),
        }
        run["total_ms"] = run["keep_ms"] + run["sparse_ffn_ms"]
        runs.append(run)
        print(f"  ffn {tokens} {run}", flush=True)
    result["runs"] = runs
    return result


# -------------------------------------------------------------------------------------------- prefill


def prefill_config(name: str) -> transformers.Qwen2_5_VLConfig:
    """The config of known model ``name`` for a prefill benchmark: a 1-block vision tower (unused: the
    benchmark sequence has no pixels), 3D RoPE as the real checkpoints, sdpa attention."""
    config = known_config(name)
    config.vision_config.depth = 1
    config.vision_config.fullatt_block_indexes = [0]
    config.text_config.rope_parameters = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}
    config.text_config.max_position_embeddings = 131072
    config._attn_implementation = "sdpa"
    return config


def build_7b(device: torch.device) -> transformers.Qwen2_5_VLForConditionalGeneration:
    """Qwen2.5-VL-7B's architecture with random bf16 weights on ``device`` (``prefill_config``)."""
    config = prefill_config("qwen2.5-vl-7b")
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    return model.eval()


def prefill_section(lengths: list[int], settings: list[dict[str, Any]], device: torch.device) -> list[dict[str, Any]]:
    model = build_7b(device)
    rows = []
    for tokens in lengths:
        ids, grid = video_inputs(tokens, device)
        forward = functools.partial(model, input_ids=ids, video_grid_thw=grid, logits_to_keep=1, use_cache=False)
        eager_logits = None
        for fused_ops, setting in [(f, s) for f in (False, True) for s in [{"dense": True}, *settings]]:
            (fused.fuse if fused_ops else fused.unfuse)(model)
            sparse = None if setting.get("dense") else SparseRuntime.attach(model, AdaSparkConfig(**setting))
            row = {"tokens": tokens, "fused_ops": fused_ops}
            with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION],
                                               set_priority=True):
                logits = forward().logits
                if sparse is None and not fused_ops:
                    eager_logits = logits
                elif sparse is None:
                    row["logits_relative_error_vs_eager"] = relative_error(logits, eager_logits)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    forward()
                    torch.cuda.synchronize()
                    times.append((time.perf_counter() - start) * 1e3)
                peak = torch.cuda.max_memory_allocated() - base
            row.update(setting="dense (SDPA cuDNN)" if sparse is None else setting, ms=sorted(times)[1],
                       peak_activation_gib=peak / 2**30)
            if sparse is not None:
                flops = count_sample(model.config, sparse.records, video_grid_thw=grid).llm_prefill
                row.update(flop_actual=flops.actual, flop_dense=flops.dense, flop_ratio=flops.dense / flops.actual)
                sparse.detach()
            rows.append(row)
            print(f"  prefill {row}", flush=True)
    fused.unfuse(model)
    return rows


# -------------------------------------------------------------------------------------------- report


def environment(argv: list[str], script: str = "benchmarks/bench_kernels.py") -> dict[str, Any]:
    """Device, versions, the command (``script`` with ``argv``) and the time of a run."""
    return {
        "device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
        "transformers": transformers.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(), "python": platform.python_version(),
        "command": f"PYTHONPATH=. python3 {script} " + " ".join(argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def merged(earlier: dict[str, Any], fresh: dict[str, Any], sections: list[str]) -> dict[str, Any]:
    """``earlier`` results with those of ``sections`` that ``fresh`` holds so far, the rerun noted under ``reruns``."""
    done = [name for name in sections if name in fresh]
    results = {**earlier, **{name: fresh[name] for name in done}}
    results["reruns"] = [*earlier.get("reruns", []), {"sections": done, **fresh["environment"]}]
    return results


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def check_rows(check: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in check:
        if r.get("fused"):
            rows.append([f"fused {r['fused']} (bf16) vs eager", f"identical: {r['identical_fraction']:.4f}", "-",
                         f"{r['output_relative_error']:.2e}"])
        elif r.get("ffn"):
            rows.append([f"FFN fixed_ratio={r['fixed_ratio']}", f"keep equal: {r['keep_equal']}",
                         f"active {r['active_fraction']:.3f}", f"{r['output_relative_error']:.2e}"])
        else:
            case = f"{r['dtype']} D={r['head_dim']} {r['select']} p={r['p']} ratio={r['fixed_ratio']}"
            rows.append([f"{r['tokens']} tokens {case}",
                         f"{r['kept_fraction']:.4f} / {r['reference_kept_fraction']:.4f}",
                         f"{r['pairs']} / {r['reference_pairs']}", f"{r['output_relative_error']:.2e}"])
    return rows


def attention_rows(attention: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for a in attention:
        for r in a["runs"]:
            target = r["kept_fraction"] * a["cudnn_ms"] / 0.8
            flex = r.get("flex_ms")
            met = r["total_ms"] <= target and (flex is None or r["total_ms"] < flex)
            rows.append([str(a["tokens"]), f"{a['cudnn_ms']:.2f}", f"{a['flash_ms']:.2f}", r["select"],
                         f"fixed {r['fixed_ratio']}" if r["fixed_ratio"] else f"top-p {r['p']}",
                         f"{r['kept_fraction']:.3f}", f"{r['tile_read_fraction']:.3f}", f"{r['pair_fraction']:.3f}",
                         f"{r['total_ms']:.2f}", f"{r['selection_ms']:.2f}", f"{r['flash_ms']:.2f}",
                         "-" if flex is None else f"{flex:.2f}", f"{target:.2f}", "yes" if met else "no"])
    return rows


def ffn_rows(ffn: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for f in ffn:
        for r in f["runs"]:
            target = 1.1 * r["active_fraction"] * f["dense_ms"]
            rows.append([str(f["tokens"]), f"{f['dense_ms']:.2f}", str(r["fixed_ratio"]), f"{r['active_fraction']:.3f}",
                         f"{r['keep_ms']:.2f}", f"{r['sparse_ffn_ms']:.2f}", f"{r['total_ms']:.2f}",
                         f"{r['mlp_on_active_ms']:.2f}", f"{r['reference_keep_ms'] + r['reference_sparse_ffn_ms']:.2f}",
                         f"{target:.2f}", "yes" if r["total_ms"] <= target else "no"])
    return rows


def prefill_rows(prefill: list[dict[str, Any]]) -> list[list[str]]:
    """Speedups against the dense row of the same length and the same ``fused_ops``."""
    dense = {(r["tokens"], r.get("fused_ops", False)): r for r in prefill if isinstance(r["setting"], str)}
    rows = []
    for r in prefill:
        d = dense[r["tokens"], r.get("fused_ops", False)]
        fused_mark = " + fused ops" if r.get("fused_ops") else ""
        if r is d:
            error = r.get("logits_relative_error_vs_eager")
            note = f" (logits vs eager: {error:.1e})" if error is not None else ""
            rows.append([str(r["tokens"]), r["setting"] + fused_mark + note, f"{r['ms']:.0f}", "1.00", "1.00",
                         f"{r['peak_activation_gib']:.2f}", ""])
            continue
        speedup = d["ms"] / r["ms"]
        met = speedup >= 0.8 * r["flop_ratio"] and r["peak_activation_gib"] <= d["peak_activation_gib"]
        rows.append([str(r["tokens"]), ", ".join(f"{k}={v}" for k, v in r["setting"].items()) + fused_mark,
                     f"{r['ms']:.0f}", f"{speedup:.2f}", f"{r['flop_ratio']:.2f}", f"{r['peak_activation_gib']:.2f}",
                     "yes" if met else "no"])
    return rows


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    out = ["# AdaSpark kernel benchmarks", "",
           (f"Device: {env['device']}; torch {env['torch']}, triton {env['triton']}, transformers "
            f"{env['transformers']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}; {env['date']}."), "",
           f"Command: `{env['command']}`", ""]
    for rerun in results.get("reruns", []):
        out += [(f"Rerun later, replacing their sections: {', '.join(rerun['sections'])} ({rerun['device']}, "
                 f"{rerun['date']}, `{rerun['command']}`)."), ""]
    out += [("Medians of `triton.testing.do_bench` (ms). Layout: 28 query / 4 KV heads, head dim 128, bf16; 192 text "
             "tokens, a 448x448 video (16x16 LLM tokens per temporal group), 64 text tokens; cubes 4x4x4."), ""]
    if results.get("check"):
        out += ["## Check against the reference (GPU)", ""]
        out += table(["case", "kept (kernel / ref)", "pairs (kernel / ref)", "output rel. error"],
                     check_rows(results["check"]))
        out.append("")
    if results.get("launch"):
        launch = results["launch"]
        out += [f"## Attention kernel launch ({launch['tokens']} tokens, select=cube, selection given)", "",
                ("tma: key/value tiles read by tensor descriptors (TMA) rather than per-thread loads; error: relative "
                 f"to pointer loads, 4 warps, 2 stages. Fastest here (least total): {launch['fastest']}; the other "
                 f"sections run the model's launch (`flash.default_launch`): {launch['default']}."), ""]
        out += table(["fixed ratio", "tma", "warps", "stages", "ms", "rel. error"],
                     [[str(r["fixed_ratio"]), str(r["tma"]), str(r["num_warps"]), str(r["num_stages"]),
                       f"{r['ms']:.2f}", f"{r['relative_error']:.1e}"] for r in launch["rows"]])
        out.append("")
    if results.get("attention"):
        out += ["## AdaS-Attn (one layer)", "",
                ("density = kept fraction of candidate cubes; reads = fraction of visible cubes a query tile reads "
                 "(token select: union over the tile's 64 queries); pairs = attended / dense causal pairs. Target: "
                 "total <= density x cuDNN / 0.8, and below FlexAttention with the same block mask."), ""]
        out += table(["tokens", "cuDNN", "flash", "select", "setting", "density", "reads", "pairs", "AdaS-Attn total",
                      "selection", "attention", "Flex same mask", "target", "met"],
                     attention_rows(results["attention"]))
        tiles = ", ".join(f"{a['tokens']}: {a['tiles_ms']:.2f} ms" for a in results["attention"])
        tables = ", ".join(f"{a['tokens']}: {a['pair_tables_ms']:.2f} ms" for a in results["attention"]
                           if "pair_tables_ms" in a)
        out += ["", (f"Tile building (once per forward, shared by all layers): {tiles}. Pair-count tables "
                     f"(`select=cube`, likewise once per forward): {tables}."), ""]
    if results.get("ffn"):
        out += ["## Sparse FFN (one layer, 3584 -> 18944 -> 3584)", "",
                ("Target: sparse FFN (keep + gather/MLP/scatter) <= 1.1 x active fraction x dense MLP. The kept count "
                 "is given, as the model has it under a fixed ratio (`ffn.fixed_ratio_kept`, from the group sizes "
                 "once per forward): no host sync."), ""]
        out += table(["tokens", "dense MLP", "fixed ratio", "active", "keep", "gather+MLP+scatter", "total",
                      "MLP on active only", "reference total", "target", "met"], ffn_rows(results["ffn"]))
        if all("group_lists_ms" in f for f in results["ffn"]):
            lists = ", ".join(f"{f['tokens']}: {f['group_lists_ms']:.2f} ms" for f in results["ffn"])
            out += ["", f"Group lists (once per forward, shared by all layers; not in the times above): {lists}."]
        out.append("")
    if results.get("prefill"):
        out += ["## Whole prefill (Qwen2.5-VL-7B architecture, random bf16 weights, 28 layers)", "",
                ("Target: speedup >= 0.8 x FLOP ratio (LLM prefill FLOPs, dense / actual, 2 per multiply-add); "
                 "peak activation memory no higher than dense. Speedups are against the dense row of the same length "
                 "and the same elementwise ops: transformers' eager ones, or `models.fused` (+ fused ops: RMSNorm, "
                 "rotary embedding, SiLU-and-multiply in fused kernels, in the dense model and AdaSpark alike)."), ""]
        out += table(["tokens", "setting", "time (ms)", "speedup", "FLOP ratio", "peak activations (GiB)", "met"],
                     prefill_rows(results["prefill"]))
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16384, 32768, 65536])
    parser.add_argument("--prefill-lengths", type=int, nargs="+", default=[32768, 65536])
    parser.add_argument("--sections", default="check,launch,attention,ffn,prefill")
    parser.add_argument("--no-flex", action="store_true", help="skip FlexAttention (compiles per length)")
    parser.add_argument("--update", type=Path, help="an earlier bench_kernels.json whose other sections are kept")
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    sections = args.sections.split(",")
    results: dict[str, Any] = {"environment": environment(argv)}
    args.out.mkdir(parents=True, exist_ok=True)

    earlier = json.loads(args.update.read_text()) if args.update else None

    def report() -> dict[str, Any]:
        return merged(earlier, results, sections) if earlier else results

    def save() -> None:
        (args.out / "bench_kernels.json").write_text(json.dumps(report(), indent=1))
        (args.out / "RESULTS.md").write_text(markdown(report()))

    if "check" in sections:
        results["check"] = check_section(device)
        save()
    if "launch" in sections:
        results["launch"] = launch_section(max(args.lengths), device)
        save()
    if "attention" in sections:
        flex = None
        if not args.no_flex:
            from torch.nn.attention.flex_attention import flex_attention

            compiled = torch.compile(flex_attention, dynamic=False)
            flex = functools.partial(compiled, kernel_options={"BLOCK_M": 64, "BLOCK_N": 64})
        results["attention"] = []
        for tokens in args.lengths:
            results["attention"].append(attention_section(tokens, device, flex))
            save()
    if "ffn" in sections:
        results["ffn"] = [ffn_section(tokens, device) for tokens in args.lengths]
        save()
    if "prefill" in sections:
        settings = [{"fixed_ratio": 0.5, "select": "cube"}, {"fixed_ratio": 0.25, "select": "cube"}]
        results["prefill"] = prefill_section(args.prefill_lengths, settings, device)
        save()
    print(markdown(report()))


if __name__ == "__main__":
    main(sys.argv[1:])
