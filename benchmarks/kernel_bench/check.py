"""Section ``check``: the kernels against the reference on the GPU (kept fractions, attended pairs, outputs),
and the fused elementwise kernels against transformers' eager ops."""

from __future__ import annotations

from typing import Any

import torch
import transformers
from torch import Tensor

from adaspark_eval.models.fused import ORIGINAL_ROTARY, apply_rotary_pos_emb
from adaspark_eval.sparse import ffn as reference_ffn
from adaspark_eval.sparse.attention import select_units, sparse_attention
from adaspark_eval.sparse.kernels import ffn as kernel_ffn
from adaspark_eval.sparse.kernels.attention import kernel_attention
from adaspark_eval.sparse.kernels.fused import rms_norm, silu_mul
from adaspark_eval.sparse.kernels.tiles import build_tiles
from benchmarks.kernel_bench.common import (
    FRAME,
    HEAD_DIM,
    HEADS,
    HIDDEN,
    KV_HEADS,
    LONGEST,
    PREFIX,
    SUFFIX,
    bench_layout,
    ffn_rule,
    qkv,
    random_mlp,
    relative_error,
    rule_of,
)


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
    """``models.fused``' kernels (``sparse.kernels.fused``) against transformers' eager ops in bf16 on the GPU:
    identical elements."""
    gen = torch.Generator(device=hidden.device).manual_seed(3)
    eager_rms_norm = transformers.models.qwen2_5_vl.modeling_qwen2_5_vl.Qwen2_5_VLRMSNorm
    norm = eager_rms_norm(HIDDEN, eps=1e-6).to(hidden.device, torch.bfloat16)
    norm.weight.data = torch.randn(HIDDEN, device=hidden.device, generator=gen).bfloat16()
    q, k = (x.view(1, x.shape[1], -1, HEAD_DIM).transpose(1, 2) for x in (hidden[..., :HEADS * HEAD_DIM],
                                                                         residual[..., :KV_HEADS * HEAD_DIM]))
    cos, sin = (torch.randn(1, hidden.shape[1], HEAD_DIM, device=hidden.device, generator=gen).bfloat16()
                for _ in range(2))
    gate, up = hidden[..., :HIDDEN // 2], residual[..., HIDDEN // 2:]
    pairs = {"rms_norm": (rms_norm(residual, norm.weight, 1e-6), norm(residual)),
             "rotary q": (apply_rotary_pos_emb(q, k, cos, sin)[0], ORIGINAL_ROTARY(q, k, cos, sin)[0]),
             "silu_mul": (silu_mul(gate, up), torch.nn.functional.silu(gate) * up)}
    return [{"fused": name, "identical_fraction": float((got == want).float().mean()),
             "output_relative_error": relative_error(got, want)} for name, (got, want) in pairs.items()]
