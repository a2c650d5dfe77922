"""The report of the kernel benchmarks: the environment of a run, ``--update`` merging, and the markdown
(``RESULTS.md``) of the JSON results."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from typing import Any

import torch
import transformers
import triton


FA4_VERSIONS = {"flash_attn_4": "flash-attn-4", "cutlass_dsl": "nvidia-cutlass-dsl"}  # key -> distribution


def environment(argv: list[str], script: str = "benchmarks/bench_kernels.py",
                versions: dict[str, str] | None = None) -> dict[str, Any]:
    """Device, versions, the command (``script`` with ``argv``) and the time of a run; ``versions``: more
    distributions' versions under their keys (None where not installed)."""
    env = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "torch": torch.__version__, "triton": triton.__version__,
        "transformers": transformers.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(), "python": platform.python_version(),
        "command": f"PYTHONPATH=. python3 {script} " + " ".join(argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    for key, dist in (versions or {}).items():
        try:
            env[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            env[key] = None
    return env


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
    """Speedups against the dense row of the same model, length and ``fused_ops`` (rows without a model are
    Qwen2.5-VL-7B's, from before the section had several)."""
    def key(r: dict[str, Any]) -> tuple[str, int, bool]:
        return r.get("model", "qwen2.5-vl-7b"), r["tokens"], r.get("fused_ops", False)

    dense = {key(r): r for r in prefill if isinstance(r["setting"], str)}
    rows = []
    for r in prefill:
        d = dense[key(r)]
        model = key(r)[0]
        fused_mark = " + fused ops" if r.get("fused_ops") else ""
        if r is d:
            error = r.get("logits_relative_error_vs_eager")
            note = f" (logits vs eager: {error:.1e})" if error is not None else ""
            rows.append([model, str(r["tokens"]), r["setting"] + fused_mark + note, f"{r['ms']:.0f}", "1.00", "1.00",
                         f"{r['peak_activation_gib']:.2f}", ""])
            continue
        speedup = d["ms"] / r["ms"]
        met = speedup >= 0.8 * r["flop_ratio"] and r["peak_activation_gib"] <= d["peak_activation_gib"]
        rows.append([model, str(r["tokens"]), ", ".join(f"{k}={v}" for k, v in r["setting"].items()) + fused_mark,
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
        out += ["## Whole prefill (Qwen2.5-VL-7B and Qwen3-VL-8B architectures, random bf16 weights)", "",
                ("Target: speedup >= 0.8 x FLOP ratio (LLM prefill FLOPs, dense / actual, 2 per multiply-add); "
                 "peak activation memory no higher than dense. Speedups are against the dense row of the same length "
                 "and the same elementwise ops: transformers' eager ones, or `models.fused` (+ fused ops: RMSNorm, "
                 "rotary embedding, SiLU-and-multiply in fused kernels, in the dense model and AdaSpark alike)."), ""]
        out += table(["model", "tokens", "setting", "time (ms)", "speedup", "FLOP ratio", "peak activations (GiB)", "met"],
                     prefill_rows(results["prefill"]))
        out.append("")
    return "\n".join(out)
