"""Kept sets of the selection kernels against the reference at full length, row by row (GPU).

bench_kernels.py's check section compares kept fractions and attended pairs; at 64k-131k tokens those differ
in the last digits, because a few of the hundreds of thousands of selection rows keep another set. This script
finds every such row and measures, in float64 from the same inputs, how close the row's choice was to a tie:
for top-p, the nearer of the kept mass's distance from ``p`` and the relative gap between the probabilities at
the boundary; for a fixed ratio, the relative gap between the scores at the boundary. A row decided within
float32 rounding (a margin of a few 1e-7) may go either way in two float32 computations that sum in another
order; a larger margin would be a bug.

Usage: ``PYTHONPATH=. python3 benchmarks/selection_agreement.py --out DIR`` on one GPU (about a minute);
writes ``DIR/selection_agreement.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from adaspark_eval.sparse.attention import AttentionRule, select_per_unit, select_units, unit_means
from adaspark_eval.sparse.kernels.attention import choosing_units
from adaspark_eval.sparse.kernels.select import KernelSelection, select_tiles
from adaspark_eval.sparse.kernels.tiles import CubeTiles, build_tiles
from adaspark_eval.sparse.layout import PAD, TokenLayout
from benchmarks.bench_kernels import HEAD_DIM, LONGEST, bench_layout, environment, qkv, rule_of, table

HEADS, KV_HEADS = 4, 1
CASES = [("cube", 0.9, None), ("cube", 1.0, 0.25), ("token", 0.9, None), ("token", 1.0, 0.25)]
CHUNK = 2048  # query positions compared at a time (select=token)
ROUNDING = 2e-6  # margins below this are float32 rounding (about 16 ulps relative)


def listed_columns(selection: KernelSelection, cols: int) -> Tensor:
    """(B, H, U, C) bool: the columns in each tile's list."""
    entry = torch.arange(cols, device=selection.lists.device)
    rest = (selection.counts - selection.full_counts)[..., None]
    taken = (entry < selection.full_counts[..., None]) | (entry >= cols - rest)
    listed = torch.zeros(*selection.lists.shape[:3], cols + 1, dtype=torch.bool, device=selection.lists.device)
    listed.scatter_(3, torch.where(taken, selection.lists, cols).long(), True)
    return listed[..., :cols]


def means64(x: Tensor, layout: TokenLayout) -> Tensor:
    """(H, U, D) float64 mean of ``x`` (1, H, S, D) over each unit's tokens."""
    units = layout.num_units
    index = torch.where(layout.unit[0] == PAD, units, layout.unit[0])
    sums = torch.zeros(x.shape[1], units + 1, x.shape[3], dtype=torch.float64, device=x.device)
    sums.index_add_(1, index, x[0].double())
    counts = torch.zeros(units + 1, dtype=torch.float64, device=x.device).index_add_(0, index, torch.ones_like(
        index, dtype=torch.float64))
    return (sums / counts.clamp_min(1)[None, :, None])[:, :units]


def margin(scores: Tensor, n_kernel: int, n_reference: int, rule: AttentionRule) -> float:
    """How close a row's choice was to a tie (see the module doc); ``scores`` (N,) float64 of its candidates."""
    low, high = sorted((n_kernel, n_reference))
    if rule.fixed_ratio is not None:
        ranked = scores.sort(descending=True).values
        return float((ranked[low - 1] - ranked[low]).abs() / ranked[low].abs())
    probs = torch.softmax(scores, 0).sort(descending=True).values
    mass = probs.cumsum(0)
    edges = [k for k in {low, high} if 0 < k < len(probs)]
    mass_gap = min(float((mass[k - 1] - rule.p).abs()) for k in {low, high})
    tie_gap = min((float((probs[k - 1] - probs[k]) / probs[k]) for k in edges), default=1.0)
    return min(mass_gap, tie_gap)


def cube_rows(q: Tensor, k: Tensor, layout: TokenLayout, tiles: CubeTiles, rule: AttentionRule,
              selection: KernelSelection, candidates: Tensor) -> tuple[int, list[float]]:
    """Selecting (head, unit) rows and the margins of those whose kept columns differ (``candidates`` (U, C))."""
    kbar = unit_means(k.float(), layout.unit, layout.num_units).repeat_interleave(HEADS // KV_HEADS, 1)
    positions = torch.arange(layout.seq_len, device=q.device)
    reference, _ = select_per_unit(q.float(), kbar, layout, rule, HEAD_DIM**-0.5, positions)
    cols = tiles.columns[0].long()
    kernel = listed_columns(selection, tiles.num_columns)[0]  # (H, U, C)
    differ = ((kernel != reference[0][:, :, cols]) & candidates).any(-1)
    qbar = means64(q, layout)
    kbar64 = means64(k, layout).repeat_interleave(HEADS // KV_HEADS, 0)
    margins = []
    for h, u in differ.nonzero().tolist():
        cand = candidates[u]
        scores = qbar[h, u] @ kbar64[h, cols[cand]].T * HEAD_DIM**-0.5
        margins.append(margin(scores, int((kernel[h, u] & cand).sum()),
                              int((reference[0, h, u, cols] & cand).sum()), rule))
    return int(candidates.any(-1).sum()) * HEADS, margins


def token_rows(q: Tensor, k: Tensor, layout: TokenLayout, tiles: CubeTiles, rule: AttentionRule,
               selection: KernelSelection) -> tuple[int, list[float]]:
    """Selecting (head, position) rows and the margins of those whose kept columns differ."""
    reference = select_units(q.float(), k.float(), layout, rule, HEAD_DIM**-0.5, chunk=CHUNK)
    cols = tiles.columns[0].long()
    bit = torch.arange(tiles.num_columns, device=q.device)
    slot_of = torch.empty(layout.seq_len, dtype=torch.long, device=q.device)
    real = tiles.slot_pos[0] >= 0
    slot_of[tiles.slot_pos[0, real].long()] = real.nonzero().flatten()
    kbar64 = means64(k, layout).repeat_interleave(HEADS // KV_HEADS, 0)
    rows, margins = 0, []
    for index, keep in enumerate(reference.keep):
        pos = torch.arange(index * CHUNK, index * CHUNK + keep.shape[2], device=q.device)
        own = layout.unit[0, pos].long()
        visual = (own >= 0) & layout.unit_is_visual[0][own.clamp_min(0)]
        candidates = ((tiles.col_first[0][None, :] <= pos[:, None]) & (cols[None, :] != own[:, None])
                      & (tiles.col_first[0] < layout.seq_len)[None, :] & visual[:, None])
        kernel = ((selection.bits[0][:, slot_of[pos]][..., bit // 32] >> (bit % 32)) & 1).bool()  # (H, n, C)
        ref = keep[0][:, :, cols]
        differ = ((kernel != ref) & candidates).any(-1)
        rows += int(candidates.any(-1).sum()) * HEADS
        for h, j in differ.nonzero().tolist():
            cand = candidates[j]
            scores = q[0, h, pos[j]].double() @ kbar64[h, cols[cand]].T * HEAD_DIM**-0.5
            margins.append(margin(scores, int((kernel[h, j] & cand).sum()), int((ref[h, j] & cand).sum()), rule))
    return rows, margins


def agreement(tokens: int, device: torch.device) -> list[dict[str, Any]]:
    layout = bench_layout(tokens, device)
    q, k, _ = qkv(layout, HEADS, KV_HEADS, HEAD_DIM, torch.bfloat16)
    tiles = build_tiles(layout, "all")
    chooses = choosing_units(layout, "dense")
    cols = tiles.columns[0].long()
    units = torch.arange(layout.num_units, device=device)
    candidates = ((tiles.col_first[0][None, :] <= tiles.unit_last[0][:, None]) & (cols[None, :] != units[:, None])
                  & (tiles.col_first[0] < tokens)[None, :] & (chooses[0] != 0)[:, None])  # (U, C), select=cube
    results = []
    for select, p, ratio in CASES:
        rule = rule_of(select, p, ratio)
        selection = select_tiles(q, k, tiles, chooses, select, p, ratio, HEAD_DIM**-0.5)
        if select == "cube":
            rows, margins = cube_rows(q, k, layout, tiles, rule, selection, candidates)
        else:
            rows, margins = token_rows(q, k, layout, tiles, rule, selection)
        results.append({"tokens": tokens, "columns": tiles.num_columns, "select": select, "p": p,
                        "fixed_ratio": ratio, "rows": rows, "differing_rows": len(margins),
                        "largest_margin": max(margins, default=None),
                        "beyond_rounding": sum(m > ROUNDING for m in margins)})
        print(json.dumps(results[-1]), flush=True)
        del selection
        torch.cuda.empty_cache()
    return results


def markdown(results: list[dict[str, Any]]) -> str:
    rows = [[str(r["tokens"]), str(r["columns"]), r["select"], f"p={r['p']} ratio={r['fixed_ratio']}",
             str(r["rows"]), str(r["differing_rows"]),
             "-" if r["largest_margin"] is None else f"{r['largest_margin']:.1e}", str(r["beyond_rounding"])]
            for r in results]
    header = ["tokens", "columns", "select", "rule", "selecting rows", "rows differing", "largest margin",
              f"margins > {ROUNDING:.0e}"]
    return "\n".join(table(header, rows)) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=[65536, LONGEST])
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    results = [row for tokens in args.lengths for row in agreement(tokens, device)]
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment(argv, script="benchmarks/selection_agreement.py"), "heads": HEADS,
              "kv_heads": KV_HEADS, "head_dim": HEAD_DIM, "rounding": ROUNDING, "results": results}
    (args.out / "selection_agreement.json").write_text(json.dumps(report, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main(sys.argv[1:])
