"""Where a sparse 7B prefill spends its time: ``torch.profiler`` over one forward of Qwen2.5-VL-7B's
architecture (random bf16 weights, the benchmark sequence of ``bench_kernels.py``), dense and with AdaSpark.

    PYTHONPATH=. python3 benchmarks/profile_prefill.py --out OUT_DIR [--tokens 65536] [--fixed-ratio 0.25]
        [--fused-ops]

Writes ``profile_prefill.md``: per setting, the wall time of the profiled forward, the GPU time summed over
kernels, and the operators with the most GPU time and the most CPU time (a CPU-bound op shows as a gap
between GPU kernels: the GPU waits while the host syncs or launches).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from bench_kernels import build_7b, video_inputs  # noqa: E402 - a sibling benchmark script

from adaspark_eval.config import AdaSparkConfig  # noqa: E402
from adaspark_eval.models import fused  # noqa: E402
from adaspark_eval.sparse.qwen2_5_vl import AdaSpark  # noqa: E402


def profiled(forward, rows: int) -> tuple[float, float, str, str]:
    """(wall ms, summed GPU kernel ms, top ops by GPU time, top ops by CPU time) of one ``forward``."""
    with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION], set_priority=True):
        forward()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            start = time.perf_counter()
            forward()
            torch.cuda.synchronize()
            wall = (time.perf_counter() - start) * 1e3
    averages = prof.key_averages()
    gpu = sum(event.self_device_time_total for event in averages) / 1e3
    by_gpu = averages.table(sort_by="self_device_time_total", row_limit=rows, max_name_column_width=60)
    by_cpu = averages.table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=60)
    return wall, gpu, by_gpu, by_cpu


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--fixed-ratio", type=float, default=0.25)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--fused-ops", action="store_true", help="models.fused kernels in both models")
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    model = build_7b(device)
    if args.fused_ops:
        fused.fuse(model)
    ids, grid = video_inputs(args.tokens, device)
    forward = functools.partial(model, input_ids=ids, video_grid_thw=grid, logits_to_keep=1, use_cache=False)
    lines = [f"# Profile of one prefill ({args.tokens} tokens, Qwen2.5-VL-7B architecture, {torch.cuda.get_device_name()})",
             "", f"`PYTHONPATH=. python3 benchmarks/profile_prefill.py {' '.join(argv)}`", ""]
    for name, config in (("dense", None), (f"AdaSpark fixed_ratio={args.fixed_ratio}, select=cube",
                                            AdaSparkConfig(fixed_ratio=args.fixed_ratio, select="cube"))):
        sparse = AdaSpark.attach(model, config) if config is not None else None
        wall, gpu, by_gpu, by_cpu = profiled(forward, args.rows)
        if sparse is not None:
            sparse.detach()
        lines += [f"## {name}", "", f"Wall {wall:.0f} ms (profiler on); GPU kernels {gpu:.0f} ms.", "",
                  "By GPU time:", "", "```", by_gpu, "```", "", "By CPU time:", "", "```", by_cpu, "```", ""]
        print(f"{name}: wall {wall:.0f} ms, GPU {gpu:.0f} ms", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "profile_prefill.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
