"""Section ``launch``: the attention kernel under each launch configuration at the longest length; the fastest
is reported, and the other sections run the model's own launch (``flash.default_launch``)."""

from __future__ import annotations

import functools
from typing import Any

import torch

from adaspark_eval.sparse.kernels import flash
from adaspark_eval.sparse.kernels.attention import choosing_units
from adaspark_eval.sparse.kernels.flash import FlashLaunch, sparse_flash
from adaspark_eval.sparse.kernels.select import select_tiles
from adaspark_eval.sparse.kernels.tiles import build_tiles
from benchmarks.kernel_bench.common import (
    DENSITIES,
    HEAD_DIM,
    HEADS,
    KV_HEADS,
    bench_layout,
    median_ms,
    qkv,
    relative_error,
)

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
