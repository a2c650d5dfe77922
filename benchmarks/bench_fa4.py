"""AdaS-Attn on flash-attn-4's block-sparse kernels against the project's kernel and the dense kernels, on one
GPU at Qwen2.5-VL-7B's shapes (issue 24; flash-attn-4 from ``pip install 'adaspark-eval[gpu]'``).

    PYTHONPATH=. python3 benchmarks/bench_fa4.py --out OUT_DIR [--sections check,attention,prefill]
        [--lengths 65536] [--prefill-lengths 16384 65536 131072] [--budget-s 540]

Sections are ``benchmarks/kernel_bench/fa4.py``'s. Writes ``bench_fa4.json`` to ``OUT_DIR`` after each section;
prefill lengths that would start after ``--budget-s`` seconds are skipped (one call on the lent machine may run
10 minutes). The tables in ``benchmarks/RESULTS.md`` (section "flash-attn-4") are written from that file by
``--markdown FILE``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: ``benchmarks.kernel_bench``


def fmt(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown(results: dict[str, Any]) -> str:
    """The result tables of a ``bench_fa4.json``."""
    env = results["environment"]
    lines = [f"Device: {env['device']}; torch {env['torch']}, flash-attn-4 {env.get('flash_attn_4')}, "
             f"nvidia-cutlass-dsl {env.get('cutlass_dsl')}; {env['date']}.", "",
             f"Command: `{env['command']}`", ""]
    for rerun in results.get("reruns", []):
        lines += [f"Run later, added: {', '.join(rerun['sections'])} ({rerun['device']}, {rerun['date']}, "
                  f"`{rerun['command']}`).", ""]
    if "check" in results:
        lines += ["| check | variant | tokens | vs float32 blocks | vs project kernel | union / kept | error |",
                  "|---|---|---|---|---|---|---|"]
        for r in results["check"]:
            error = r.get("vs_float32_blocks", r.get("vs_float32_sdpa"))
            lines.append(f"| | {r['variant']} | {r['tokens']} | {fmt(error, 5)}"
                         f" | {fmt(r.get('vs_project_kernel'), 5)} | {fmt(r.get('union_over_kept'), 3)} | "
                         f"{r.get('error', '')[:120]} |")
        lines.append("")
    for section in results.get("attention", []):
        tokens, dense = section["tokens"], section.get("fa4_dense_ms")
        lines += [f"One layer, {tokens} tokens: dense cuDNN {fmt(section['cudnn_ms'])} ms, dense flash-attn-4 "
                  f"{fmt(dense)} ms. Target (128-token cubes): total <= density x fa4 dense / 0.85.", "",
                  "| density | variant | kept | pairs | union / kept | total | selection | tables | attention | "
                  "TFLOP/s per attended pair | target | met |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in section["runs"]:
            pairs = r.get("pairs")
            tflops = (4 * 128 * pairs * 28 * tokens * (tokens + 1) / 2 / (r["attention_ms"] * 1e-3) / 1e12
                      if pairs and r.get("attention_ms") else None)
            target = r["density"] * dense / 0.85 if dense else None
            met = "" if target is None or "total_ms" not in r else ("yes" if r["total_ms"] <= target else "no")
            lines.append(f"| {r['density']} | {r['variant']} | {fmt(r.get('kept_fraction'), 3)} | {fmt(pairs, 3)} | "
                         f"{fmt(r.get('union_over_kept'), 3)} | {fmt(r.get('total_ms'))} | "
                         f"{fmt(r.get('selection_ms'))} | "
                         f"{fmt(r.get('tables_ms'))} | {fmt(r.get('attention_ms'))} | {fmt(tflops, 0)} | "
                         f"{fmt(target)} | {met} {r.get('error', '')[:120]} |")
        lines.append("")
    if "breakdown" in results:
        lines += ["Where the 128 x 128 path's time goes (ms): selection, read sets, block tables, slot-order copies "
                  "in and out, flash-attn-4 alone, and flash-attn-4 with every listed block taken as full (no "
                  "mask_mod; wrong output, for the mask blocks' cost).", "",
                  "| tokens | density | mask blocks | selection | read sets | tables | copies in | copy out | "
                  "flash-attn-4 | all blocks full | copies in, elementwise | copy out, elementwise | "
                  "flash-attn-4, contiguous inputs |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in results["breakdown"]:
            lines.append(f"| {r['tokens']} | {r['density']} | {fmt(r['mask_block_fraction'], 3)} | "
                         + " | ".join(fmt(r.get(k)) for k in ("selection_ms", "reads_ms", "tables_ms", "to_slots_ms",
                                                               "from_slots_ms", "fa4_ms", "fa4_all_full_ms",
                                                               "to_slots_elementwise_ms",
                                                               "from_slots_elementwise_ms", "fa4_contiguous_ms"))
                         + " |")
        lines.append("")
    if "prefill" in results:
        lines += ["Whole prefill (Qwen2.5-VL-7B architecture, random bf16 weights, 28 layers, fused ops); speedups "
                  "against dense flash-attn-4 of the same length; met: speedup >= 0.85 x FLOP ratio (LLM prefill).",
                  "", "| tokens | setting | time (ms) | speedup vs fa4 dense | FLOP ratio | union / kept | met |",
                  "|---|---|---|---|---|---|---|"]
        dense = {r["tokens"]: r.get("ms") for r in results["prefill"] if r.get("setting") == "dense fa4"}
        for r in results["prefill"]:
            base = dense.get(r["tokens"])
            speedup = base / r["ms"] if base and r.get("ms") else None
            ratio = r.get("flop_ratio")
            met = "" if ratio is None or speedup is None or ratio == 1 else ("yes" if speedup >= 0.85 * ratio else "no")
            lines.append(f"| {r['tokens']} | {r.get('setting', '-')} | {fmt(r.get('ms'), 0)} | {fmt(speedup)} | "
                         f"{fmt(ratio)} | {fmt(r.get('union_over_kept'), 3)} | {met} "
                         f"{r.get('error', r.get('skipped', ''))[:120]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--sections", default="check,attention,prefill", help="and breakdown (128 x 128 only)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[65536])
    parser.add_argument("--prefill-lengths", type=int, nargs="+", default=[16384, 65536, 131072])
    parser.add_argument("--budget-s", type=float, default=540.0)
    parser.add_argument("--markdown", type=Path, help="print the tables of this bench_fa4.json and stop")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    start = time.monotonic()
    import torch

    from benchmarks.kernel_bench import fa4 as sections
    from benchmarks.kernel_bench.report import FA4_VERSIONS, environment

    device = torch.device("cuda")
    env = environment(argv, "benchmarks/bench_fa4.py", versions=FA4_VERSIONS)
    results: dict[str, Any] = {"environment": env}
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        (args.out / "bench_fa4.json").write_text(json.dumps(results, indent=1))
        print(f"[{time.monotonic() - start:.0f} s] saved", flush=True)

    chosen = args.sections.split(",")
    if "check" in chosen:
        results["check"] = sections.check_section(device)
        save()
    if "attention" in chosen:
        results["attention"] = []
        for tokens in args.lengths:
            results["attention"].append(sections.attention_section(tokens, device))
            save()
    if "breakdown" in chosen:
        results["breakdown"] = [row for tokens in args.lengths for row in sections.breakdown_section(tokens, device)]
        save()
    if "prefill" in chosen:
        results["prefill"] = sections.prefill_section(args.prefill_lengths, device, start + args.budget_s)
        save()
    print(markdown(results))


if __name__ == "__main__":
    main(sys.argv[1:])
