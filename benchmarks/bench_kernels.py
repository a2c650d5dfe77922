"""AdaSpark kernel benchmarks on one GPU (issue 7), at Qwen2.5-VL-7B's shapes.

    PYTHONPATH=. python3 benchmarks/bench_kernels.py --out OUT_DIR [--lengths 16384 32768 65536]
        [--sections check,ffn --update benchmarks/bench_kernels.json]

Sections (``--sections``): ``check`` (kernels against the reference on the GPU), ``launch`` (the attention
kernel under each launch configuration at the longest length; the fastest is used from then on), ``attention``
(dense SDPA on cuDNN and flash, FlexAttention with the kernel's block mask, the AdaS-Attn kernel with its
selection included and alone), ``ffn`` (dense MLP, sparse FFN), ``prefill`` (a whole prefill with random bf16
weights, dense vs AdaSpark, with peak memory: the Qwen2.5-VL-7B architecture with transformers' eager elementwise
ops and with ``models.fused``, and the Qwen3-VL-8B architecture; ``--prefill-models`` picks them, and with
``--update`` the rows of the models not run are kept). Times are medians of ``triton.testing.do_bench`` (CUDA events, L2 flushed between runs).
Writes ``bench_kernels.json`` and ``RESULTS.md`` to ``OUT_DIR``; with ``--update FILE`` the sections run replace
theirs in an earlier ``bench_kernels.json``, the others are kept, and the report names each rerun.

A sequence of ``L`` tokens is 192 text tokens, one video of ``(L - 256) / 256`` temporal groups of 16 x 16
LLM tokens (448 x 448 frames) and 64 text tokens; cubes are 4 x 4 x 4.

This is the entry point; each section is a module of ``benchmarks/kernel_bench/`` (``check``, ``launch``,
``attention``, ``ffn``, ``prefill``), with the shared inputs in ``common`` and the report in ``report``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: ``benchmarks.kernel_bench``
from benchmarks.kernel_bench.attention import attention_section, compiled_flex  # noqa: E402
from benchmarks.kernel_bench.check import check_section  # noqa: E402
from benchmarks.kernel_bench.common import PREFILL_MODELS  # noqa: E402
from benchmarks.kernel_bench.ffn import ffn_section  # noqa: E402
from benchmarks.kernel_bench.launch import launch_section  # noqa: E402
from benchmarks.kernel_bench.prefill import ADASPARK_SETTINGS, prefill_section  # noqa: E402
from benchmarks.kernel_bench.report import environment, markdown, merged  # noqa: E402


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16384, 32768, 65536])
    parser.add_argument("--prefill-lengths", type=int, nargs="+", default=[32768, 65536])
    parser.add_argument("--prefill-models", default=",".join(PREFILL_MODELS),
                        help="known configs of the prefill section, comma-separated")
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
        flex = None if args.no_flex else compiled_flex()
        results["attention"] = []
        for tokens in args.lengths:
            results["attention"].append(attention_section(tokens, device, flex))
            save()
    if "ffn" in sections:
        results["ffn"] = [ffn_section(tokens, device) for tokens in args.lengths]
        save()
    if "prefill" in sections:
        models = tuple(args.prefill_models.split(","))
        kept = [r for r in (earlier or {}).get("prefill", []) if r.get("model", "qwen2.5-vl-7b") not in models]
        results["prefill"] = kept + prefill_section(args.prefill_lengths, ADASPARK_SETTINGS, device, models)
        save()
    print(markdown(report()))


if __name__ == "__main__":
    main(sys.argv[1:])
