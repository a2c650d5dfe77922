"""Section ``ffn``: one layer's dense MLP against the sparse FFN (keep, then gather / MLP / scatter) at each
length, the kept count given as the model has it under a fixed ratio."""

from __future__ import annotations

import functools
from typing import Any

import torch

from adaspark_eval.sparse import ffn as reference_ffn
from adaspark_eval.sparse.kernels import ffn as kernel_ffn
from adaspark_eval.sparse.state import ForwardState
from benchmarks.kernel_bench.common import HIDDEN, bench_layout, ffn_rule, median_ms, random_mlp

FFN_FRACTIONS = (0.75, 0.5, 0.25)


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
