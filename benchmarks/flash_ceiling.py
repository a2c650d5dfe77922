"""How fast the sparse flash kernel's inner loop can go: the listed-tile loop alone, on synthetic lists.

Every program walks a list of ``density x units`` key tiles, all full (no mask), with ``flash.online_update`` (the
production online-softmax step) at Qwen2.5-VL-7B's layout (28 query / 4 KV heads, head dim 128, bf16, 64-token
tiles). Variants:

- ``single``: one 64-query tile per program, as ``flash.sparse_flash`` runs;
- ``shared pair``: two query tiles per program reading the *same* list, each key/value tile loaded once and
  used by both (half the L2 -> shared-memory traffic per attended pair); not a valid AdaS-Attn schedule
  (tiles have their own lists), it isolates what the traffic costs;
- ``own pair``: two query tiles per program, each with its own list, steps interleaved (two independent
  softmax chains, each tile its own loads);
- ``hot``: ``single`` with every list drawn from the first 64 units (4 MiB of keys/values per KV head, well
  inside L2), to tell L2 capacity misses from L2 bandwidth;
- ``single ahead``: ``single`` with each list entry loaded one step before its tile is needed, to tell the
  list load's latency from the tile traffic.

Prints one JSON row per variant and writes ``flash_ceiling.json``; run on one GPU:
``PYTHONPATH=. python3 benchmarks/flash_ceiling.py --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

from adaspark_eval.sparse.kernels.flash import MASKED, TensorDescriptor, load_tile, online_update
from adaspark_eval.sparse.kernels.select import program_tile

HEADS, KV_HEADS, DIM, TILE = 28, 4, 128, 64
VARIANTS = ("single", "shared pair", "own pair", "hot", "single ahead")


@triton.jit
def _ceiling_kernel(Q, K, V, Out, Lists, length, qk_scale, heads, kv_heads, units, T: tl.constexpr,
                    D: tl.constexpr, PAIR: tl.constexpr, SHARED: tl.constexpr, AHEAD: tl.constexpr,
                    TMA: tl.constexpr):
    """Q / Out (H * U * T, D); K / V (Hkv * U * T, D) (descriptors if ``TMA``); Lists (H * U, length) units."""
    group = heads // kv_heads
    per = 1 + PAIR
    _, hk, t, g = program_tile(tl.program_id(0), units // per, group, kv_heads)
    first = (hk * group + g) * units + t * per  # tile index = row of Lists
    rows = tl.arange(0, T)
    dims = tl.arange(0, D)
    kv_row = hk * units * T
    q = tl.load(Q + (first * T + rows).to(tl.int64)[:, None] * D + dims[None, :])
    m_i = tl.zeros([T], dtype=tl.float32) + MASKED
    l_i = tl.zeros([T], dtype=tl.float32)
    acc = tl.zeros([T, D], dtype=tl.float32)
    unmasked = tl.zeros([T, T], dtype=tl.int1)
    if PAIR:
        q2 = tl.load(Q + ((first + 1) * T + rows).to(tl.int64)[:, None] * D + dims[None, :])
        m_2 = tl.zeros([T], dtype=tl.float32) + MASKED
        l_2 = tl.zeros([T], dtype=tl.float32)
        acc2 = tl.zeros([T, D], dtype=tl.float32)
        for i in range(length):
            row = kv_row + tl.load(Lists + first.to(tl.int64) * length + i) * T
            k = load_tile(K, row, T, D, TMA)
            v = load_tile(V, row, T, D, TMA)
            m_i, l_i, acc = online_update(q, k, v, m_i, l_i, acc, qk_scale, unmasked, False)
            if not SHARED:
                row = kv_row + tl.load(Lists + (first + 1).to(tl.int64) * length + i) * T
                k = load_tile(K, row, T, D, TMA)
                v = load_tile(V, row, T, D, TMA)
            m_2, l_2, acc2 = online_update(q2, k, v, m_2, l_2, acc2, qk_scale, unmasked, False)
        tl.store(Out + ((first + 1) * T + rows).to(tl.int64)[:, None] * D + dims[None, :],
                 (acc2 / l_2[:, None]).to(Out.dtype.element_ty))
    else:
        entries = Lists + first.to(tl.int64) * length
        unit = tl.load(entries)  # with AHEAD: the entry of the coming step
        for i in range(length):
            if AHEAD:
                row = kv_row + unit * T
                unit = tl.load(entries + i + 1, mask=i + 1 < length, other=0)
            else:
                row = kv_row + tl.load(entries + i) * T
            k = load_tile(K, row, T, D, TMA)
            v = load_tile(V, row, T, D, TMA)
            m_i, l_i, acc = online_update(q, k, v, m_i, l_i, acc, qk_scale, unmasked, False)
    tl.store(Out + (first * T + rows).to(tl.int64)[:, None] * D + dims[None, :],
             (acc / l_i[:, None]).to(Out.dtype.element_ty))


def random_lists(tiles: int, length: int, pool: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """(tiles, length) int32: for each tile ``length`` distinct units of ``range(pool)``, ascending."""
    scores = torch.rand(tiles, pool, generator=gen, device=device)
    return scores.argsort(dim=1)[:, :length].sort(dim=1).values.to(torch.int32)


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lists: torch.Tensor, tiles: list[int], units: int,
              scale: float) -> torch.Tensor:
    """(len(tiles), T, D) float32 attention of the given query tiles over their listed key tiles."""
    group = HEADS // KV_HEADS
    out = []
    for tile in tiles:
        hk = tile // units // group
        keys = k.view(KV_HEADS, units, TILE, DIM)[hk, lists[tile].long()].reshape(-1, DIM).float()
        values = v.view(KV_HEADS, units, TILE, DIM)[hk, lists[tile].long()].reshape(-1, DIM).float()
        query = q.view(-1, TILE, DIM)[tile].float()
        out.append(torch.softmax(query @ keys.T * scale, dim=-1) @ values)
    return torch.stack(out)


def measure(tokens: int, density: float, variant: str, tma: bool, stages: int, device: torch.device) -> dict:
    units = tokens // TILE
    length = max(1, round(density * units))
    gen = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(HEADS * units * TILE, DIM, generator=gen, device=device).bfloat16()
    k, v = (torch.randn(KV_HEADS * units * TILE, DIM, generator=gen, device=device).bfloat16() for _ in range(2))
    pool = min(units, 64) if variant == "hot" else units
    lists = random_lists(HEADS * units, length, max(pool, length), gen, device)
    if variant == "shared pair":
        lists = lists.view(-1, 2, length)[:, :1].expand(-1, 2, -1).reshape(-1, length).contiguous()
    pair = variant in ("shared pair", "own pair")
    out = torch.empty_like(q)
    keys, values = k, v
    if tma:
        keys, values = (TensorDescriptor.from_tensor(x, block_shape=[TILE, DIM]) for x in (k, v))
    scale = DIM**-0.5

    def run() -> None:
        _ceiling_kernel[(HEADS * units // (2 if pair else 1),)](
            q, keys, values, out, lists, length, scale * math.log2(math.e), HEADS, KV_HEADS, units, T=TILE, D=DIM,
            PAIR=pair, SHARED=variant == "shared pair", AHEAD=variant == "single ahead", TMA=tma, num_warps=4,
            num_stages=stages)

    run()
    checked = [0, 1, HEADS * units - 2, HEADS * units - 1]
    expected = reference(q, k, v, lists, checked, units, scale)
    error = float((out.view(-1, TILE, DIM)[checked].float() - expected).norm() / expected.norm())
    ms = float(do_bench(run, warmup=25, rep=200, return_mode="median"))
    pairs = HEADS * units * TILE * TILE * length
    return {"tokens": tokens, "density": density, "variant": variant, "tma": tma, "num_stages": stages, "ms": ms,
            "tflops_per_pair": 4 * DIM * pairs / ms / 1e9, "l2_to_sm_tb_s": (pairs // TILE) * 2 * DIM * 2 /
            (2 if variant == "shared pair" else 1) / ms / 1e9, "relative_error": error}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--densities", type=float, nargs="+", default=[0.25, 0.5])
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    environment = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
                   "command": "PYTHONPATH=. python3 benchmarks/flash_ceiling.py " + " ".join(argv)}
    for density in args.densities:
        for variant in VARIANTS:
            for tma, stages in ((False, 2), (True, 2), (True, 3)):
                rows.append(measure(args.tokens, density, variant, tma, stages, device))
                print(json.dumps(rows[-1]), flush=True)
                (args.out / "flash_ceiling.json").write_text(json.dumps({"environment": environment, "rows": rows},
                                                                        indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
