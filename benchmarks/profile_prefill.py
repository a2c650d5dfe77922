"""Where a sparse prefill spends its time: ``torch.profiler`` over one forward of Qwen2.5-VL-7B's (or
Qwen3-VL-8B's) architecture (random bf16 weights, the benchmark sequence of ``bench_kernels.py``), dense and
with AdaSpark.

    PYTHONPATH=. python3 benchmarks/profile_prefill.py --out OUT_DIR [--tokens 65536] [--fixed-ratio 0.25]
        [--fused-ops] [--model qwen3-vl-8b]

Writes ``profile_prefill.md``: per setting, the wall time of the profiled forward, the time some GPU kernel
runs, the time none does (before the first kernel and between kernels, with the longest gaps and the kernels
around them: the GPU waits while the host syncs or launches), and the operators with the most GPU time and
the most CPU time.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch.autograd import DeviceType
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: ``benchmarks.kernel_bench``
from adaspark_eval.config import AdaSparkConfig  # noqa: E402
from adaspark_eval.models import fused  # noqa: E402
from adaspark_eval.sparse.runtime import SparseRuntime  # noqa: E402
from adaspark_eval.sparse.families import family_of  # noqa: E402
from benchmarks.kernel_bench.common import PREFILL_MODELS, build_prefill_model, video_inputs  # noqa: E402


class Gap(NamedTuple):
    """The GPU running no kernel for ``ms`` between kernels ``before`` and ``after``."""

    ms: float
    before: str
    after: str


class Timeline(NamedTuple):
    """GPU time of a forward: ``busy`` ms with some kernel running, ``idle`` ms between the first and last kernel
    with none, and the ``gaps`` longest idle stretches."""

    busy: float
    idle: float
    gaps: list[Gap]


def timeline(kernels: list[tuple[float, float, str]], count: int) -> Timeline:
    """The ``Timeline`` of ``kernels`` ((start us, end us, name), any order, overlaps allowed) with ``count``
    gaps."""
    ordered = sorted(kernels)
    start, busy_until, last = ordered[0]
    busy, gaps = 0.0, []
    for begin, end, name in ordered[1:]:
        if begin > busy_until:
            busy += busy_until - start
            gaps.append(Gap((begin - busy_until) / 1e3, last, name))
            start = begin
        if end > busy_until:
            busy_until, last = end, name
    busy += busy_until - start
    return Timeline(busy / 1e3, sum(gap.ms for gap in gaps), sorted(gaps, reverse=True)[:count])


def profiled(forward, rows: int) -> tuple[str, str, str]:
    """(wall and GPU time lines, top ops by GPU time, top ops by CPU time) of one ``forward``."""
    with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION], set_priority=True):
        forward()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            start = time.perf_counter()
            forward()
            torch.cuda.synchronize()
            wall = (time.perf_counter() - start) * 1e3
    events = prof.events()
    kernels = [(e.time_range.start, e.time_range.end, e.name) for e in events if e.device_type == DeviceType.CUDA]
    forward_start = min(e.time_range.start for e in events if e.device_type == DeviceType.CPU)
    gpu = timeline(kernels, rows // 2)
    lead = (min(k[0] for k in kernels) - forward_start) / 1e3
    lines = [f"Wall {wall:.0f} ms (profiler on); GPU busy {gpu.busy:.0f} ms, idle {lead:.1f} ms before the first "
             f"kernel and {gpu.idle:.1f} ms between kernels. Longest gaps:", "",
             "| ms | after kernel | before kernel |", "|---|---|---|"]
    lines += [f"| {g.ms:.2f} | {g.before[:70]} | {g.after[:70]} |" for g in gpu.gaps]
    averages = prof.key_averages()
    by_gpu = averages.table(sort_by="self_device_time_total", row_limit=rows, max_name_column_width=60)
    by_cpu = averages.table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=60)
    return "\n".join(lines), by_gpu, by_cpu


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--fixed-ratio", type=float, default=0.25)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--fused-ops", action="store_true", help="models.fused kernels in both models")
    parser.add_argument("--model", default=PREFILL_MODELS[0], choices=PREFILL_MODELS, help="the architecture")
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    model = build_prefill_model(args.model, device)
    if args.fused_ops:
        fused.fuse(model)
    family = family_of(model.config)
    ids, grid = video_inputs(args.tokens, device, timestamps=family.timestamps)
    extra = {"mm_token_type_ids": (ids == model.config.video_token_id).long() * 2} if family.timestamps else {}
    forward = functools.partial(model, input_ids=ids, video_grid_thw=grid, logits_to_keep=1, use_cache=False, **extra)
    lines = [f"# Profile of one prefill ({args.tokens} tokens, {args.model} architecture, {torch.cuda.get_device_name()})",
             "", f"`PYTHONPATH=. python3 benchmarks/profile_prefill.py {' '.join(argv)}`", ""]
    for name, config in (("dense", None), (f"AdaSpark fixed_ratio={args.fixed_ratio}, select=cube",
                                            AdaSparkConfig(fixed_ratio=args.fixed_ratio, select="cube"))):
        sparse = SparseRuntime.attach(model, config) if config is not None else None
        gpu, by_gpu, by_cpu = profiled(forward, args.rows)
        if sparse is not None:
            sparse.detach()
        lines += [f"## {name}", "", gpu, "", "By GPU time:", "", "```", by_gpu, "```", "", "By CPU time:", "", "```",
                  by_cpu, "```", ""]
        print(f"{name}:\n{gpu}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "profile_prefill.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
