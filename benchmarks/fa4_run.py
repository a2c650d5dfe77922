"""``backend=fa4`` end to end on a GPU: a Qwen2.5-VL-7B-architecture checkpoint with random bf16 weights and a
generated Video-MME set (both from ``eval_setup.py``), against the reference path and the project's kernel.

    PYTHONPATH=. python3 benchmarks/eval_setup.py --out SETUP --videos 2 --minutes 0.5 1 --questions 2
    PYTHONPATH=. python3 benchmarks/fa4_run.py --setup SETUP --out OUT [--sections logits,cli] [--frames 64]
    python3 benchmarks/fa4_run.py --markdown benchmarks/fa4_run.json     # the tables of a result file

Sections:

* ``logits``: one question's prefill through the model for each cube shape (4x4x4: two 64-token cubes per
  flash-attn-4 query block, their union computed; 4x4x8: one 128-token cube per block), each selection rule
  (fixed ratio 0.25, top-p 0.5; ``select=cube``) and each backend (``reference``, ``triton``, ``fa4``): the last
  ``--keep`` positions' logits against the reference's (relative error, top-1 agreement), the layers whose
  kept pairs equal the reference's, fa4's union over kept pairs, and the prefill's time. Then dense attention on
  sdpa against ``attn_impl=fa4``, and the stock model against ``attention=false ffn=false`` (bit-identical).
* ``cli``: ``adaspark-eval sweep`` over both cube shapes, once per backend (the backend changes no result, so
  it is not in the config key and each backend has its own output folder), and once for the dense model on
  sdpa and on flash-attn-4: the predictions and per-layer kept fractions of every sample against the
  reference backend's, the FLOP reductions and fa4's ``blocks`` records, and each command's wall time.

Writes ``OUT/fa4_run.json`` (saved after each step) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CUBES = ((4, 4, 4), (4, 4, 8))
RULES = (("fixed 0.25", {"fixed_ratio": 0.25}), ("top-p 0.5", {"p": 0.5}))
BACKENDS = ("reference", "triton", "fa4")
QUESTION = "Which colour is seen most often in the video? Answer with the option's letter."


def fmt(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _timed_prefill(model: Any, inputs: dict[str, Any], keep: int) -> tuple[Any, float]:
    """Logits of the last ``keep`` positions of one prefill (float32, CPU) and the second run's time (ms)."""
    import torch

    with torch.no_grad():
        for _ in range(2):
            torch.cuda.synchronize()
            start = time.perf_counter()
            logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits
            torch.cuda.synchronize()
            ms = (time.perf_counter() - start) * 1e3
    return logits[0].float().cpu(), ms


def _against(logits: Any, reference: Any) -> dict[str, float]:
    """Relative error (Frobenius) and top-1 agreement of ``logits`` against ``reference`` (positions x vocab)."""
    return {"rel_err": float((logits - reference).norm() / reference.norm()),
            "top1_agree": float((logits.argmax(-1) == reference.argmax(-1)).float().mean())}


def logits_section(setup: Path, frames: int, keep: int) -> dict[str, Any]:
    import torch

    from adaspark_eval.config import AdaSparkConfig
    from adaspark_eval.data.video import read_video
    from adaspark_eval.models.loading import load_model
    from adaspark_eval.models.prompt import video_prompt
    from adaspark_eval.sparse.runtime import SparseRuntime

    loaded = load_model(str(setup / "checkpoint"), device="cuda", dtype="bfloat16")
    model = loaded.model
    video = sorted((setup / "data" / "videomme" / "data").glob("*.mp4"))[0]
    clip, _ = read_video(video, num_frames=frames)
    inputs = video_prompt(loaded.processor, [clip], QUESTION).to("cuda")
    grid = inputs["video_grid_thw"][0].tolist()
    out: dict[str, Any] = {"video": video.name, "frames": frames, "video_grid_thw": grid,
                           "tokens": int(inputs["input_ids"].shape[1]), "logits_positions": keep, "rows": []}
    print(f"logits: {out['tokens']} tokens, LLM grid {grid}", flush=True)

    stock, stock_ms = _timed_prefill(model, inputs, keep)
    runtime = SparseRuntime.attach(model, AdaSparkConfig(attention=False, ffn=False))
    dense, dense_ms = _timed_prefill(model, inputs, keep)
    runtime.detach()
    runtime = SparseRuntime.attach(model, AdaSparkConfig(attention=False, ffn=False, attn_impl="fa4"))
    dense_fa4, dense_fa4_ms = _timed_prefill(model, inputs, keep)
    runtime.detach()
    out["dense"] = {"stock_ms": stock_ms, "sdpa_ms": dense_ms, "fa4_ms": dense_fa4_ms,
                    "sdpa_equals_stock": bool(torch.equal(dense, stock)), "fa4_vs_sdpa": _against(dense_fa4, dense)}
    print(f"  dense {out['dense']}", flush=True)

    for cube in CUBES:
        for rule_name, rule in RULES:
            results = {}
            for backend in BACKENDS:
                config = AdaSparkConfig(select="cube", cube=cube, backend=backend, **rule)
                runtime = SparseRuntime.attach(model, config)
                try:
                    logits, ms = _timed_prefill(model, inputs, keep)
                    record = runtime.records[-1]
                    results[backend] = (logits, ms, [record.attention[k].pairs for k in sorted(record.attention)],
                                        record.block_work())
                except Exception as error:  # noqa: BLE001 (recorded, not fatal)
                    results[backend] = error
                runtime.detach()
            reference = results["reference"]
            for backend in BACKENDS:
                row: dict[str, Any] = {"cube": "x".join(map(str, cube)), "rule": rule_name, "backend": backend}
                got = results[backend]
                if isinstance(got, Exception) or isinstance(reference, Exception):
                    row["error"] = repr(got if isinstance(got, Exception) else reference)[:600]
                else:
                    logits, ms, pairs, work = got
                    row.update(_against(logits, reference[0]), prefill_ms=ms, dense_sdpa_ms=dense_ms)
                    same = [p is None and q is None or p is not None and q is not None and torch.equal(p, q)
                            for p, q in zip(pairs, reference[2])]
                    row["layers_same_pairs"] = f"{sum(same)}/{len(same)}"
                    kept = [float(p.sum()) for p in pairs if p is not None]
                    ref_kept = [float(p.sum()) for p in reference[2] if p is not None]
                    row["pairs_vs_reference"] = sum(kept) / sum(ref_kept) if ref_kept else None
                    if work:
                        row["union_over_kept"] = work["block_units"] / work["kept_units"]
                out["rows"].append(row)
                print(f"  {row}", flush=True)
    return out


def _run(command: list[str], log: Path) -> dict[str, Any]:
    """Run ``command``; its wall time, exit code and the log's last lines."""
    start = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=os.environ.copy())
    tail = log.read_text().splitlines()[-6:]
    return {"command": " ".join(command[3:]), "exit": done.returncode, "wall_s": round(time.perf_counter() - start, 1),
            "tail": tail if done.returncode else []}


def _records(folder: Path) -> dict[str, dict[str, Any]]:
    """The records of each run folder under a sweep folder, by a label of the config minus the backend."""
    runs = {}
    for summary_path in sorted(folder.rglob("summary.json")):
        summary = json.loads(summary_path.read_text())
        config = summary.get("config", {})
        label = f"{summary.get('method')} cube={'x'.join(map(str, config.get('cube', [])))} " \
                f"attn_impl={config.get('attn_impl')}"
        samples = [json.loads(line) for line in (summary_path.parent / "samples.jsonl").read_text().splitlines()
                   if line.strip()]
        runs[label] = {"summary": summary, "samples": {s["sample_id"]: s for s in samples}}
    return runs


def _compare(out: Path, runs: list[str]) -> list[dict[str, Any]]:
    """Per run folder of the sweeps ``runs`` done: predictions and kept fractions against the reference
    backend's (dense flash-attn-4 against dense sdpa), FLOP reductions, fa4's union over kept pairs."""
    reference = _records(out / "cli-reference")
    dense = _records(out / "cli-dense")
    rows = []
    for name in runs:
        for label, run in _records(out / f"cli-{name}").items():
            base_run = reference.get(label) if name != "dense" else dense.get(label.replace("attn_impl=fa4",
                                                                                           "attn_impl=sdpa"))
            samples = run["samples"]
            row: dict[str, Any] = {"backend": name, "run": label, "samples": len(samples),
                                   "errors": sum(1 for s in samples.values() if s.get("error")),
                                   "score": run["summary"].get("scores", {}).get("videomme/overall"),
                                   "llm_prefill_reduction": run["summary"].get("flop_reduction", {}).get("llm_prefill")}
            if base_run is not None:
                shared = [k for k in samples if k in base_run["samples"]]
                row["same_prediction"] = f"{sum(samples[k]['prediction'] == base_run['samples'][k]['prediction'] for k in shared)}/{len(shared)}"
                row["same_parsed"] = f"{sum(samples[k].get('parsed') == base_run['samples'][k].get('parsed') for k in shared)}/{len(shared)}"
                diffs = [abs(a["kept_cube_fraction"] - b["kept_cube_fraction"])
                         for k in shared for a, b in zip(samples[k].get("layers", []),
                                                         base_run["samples"][k].get("layers", []))
                         if a.get("kept_cube_fraction") is not None and b.get("kept_cube_fraction") is not None]
                row["max_kept_fraction_diff"] = max(diffs) if diffs else None
            blocks = [s["blocks"] for s in samples.values() if s.get("blocks")]
            if blocks:
                row["union_over_kept"] = sum(b["block_units"] for b in blocks) / sum(b["kept_units"] for b in blocks)
            prefill = [s["latency"]["prefill_s"] for s in samples.values() if s.get("latency", {}).get("prefill_s")]
            row["mean_prefill_s"] = sum(prefill) / len(prefill) if prefill else None
            rows.append(row)
    return rows


def cli_section(setup: Path, out: Path, frames: int, limit: int, model: str | None = None,
                device: str = "cuda", runs: tuple[str, ...] = (*BACKENDS, "dense")) -> dict[str, Any]:
    base = [sys.executable, "-m", "adaspark_eval.cli.main", "sweep", "--task", "videomme",
            "--model", model or str(setup / "checkpoint"), "--data-root", str(setup / "data"), "--frames",
            str(frames), "--limit", str(limit), "--device", device, "--workers", "2", "--no-frame-cache"]
    commands = {backend: [*base, "--select", "cube", "--fixed-ratio", "0.25", "--cube", "4x4x4,4x4x8",
                          "--backend", backend, "--output", str(out / f"cli-{backend}")] for backend in BACKENDS}
    commands["dense"] = [*base, "--method", "dense", "--attn-impl", "sdpa,fa4", "--output", str(out / "cli-dense")]
    result: dict[str, Any] = {"frames": frames, "limit": limit, "commands": {}, "rows": []}
    for name in runs:
        command = commands[name]
        result["commands"][name] = _run(command, out / f"cli-{name}.log")
        print(f"cli {name}: {result['commands'][name]}", flush=True)
        result["rows"] = _compare(out, [r for r in runs if r in result["commands"]])
        (out / "cli_partial.json").write_text(json.dumps(result, indent=1))  # what a cut-off call keeps
    return result


def markdown(results: dict[str, Any]) -> str:
    env = results.get("environment", {})
    lines = [f"Device: {env.get('device')}; torch {env.get('torch')}, flash-attn-4 {env.get('flash_attn_4')}, "
             f"nvidia-cutlass-dsl {env.get('cutlass_dsl')}; {env.get('date')}.", "", f"Command: `{env.get('command')}`",
             ""]
    if "logits" in results:
        lg = results["logits"]
        d = lg["dense"]
        lines += [f"One prefill: {lg['tokens']} tokens ({lg['frames']} frames, LLM grid {lg['video_grid_thw']}); "
                  f"logits of the last {lg['logits_positions']} positions against the reference backend's.", "",
                  f"Dense: sdpa equals the stock model bit for bit: {d['sdpa_equals_stock']}; flash-attn-4 against "
                  f"sdpa: relative error {fmt(d['fa4_vs_sdpa']['rel_err'])}, top-1 agreement "
                  f"{fmt(d['fa4_vs_sdpa']['top1_agree'])}; prefill {d['sdpa_ms']:.0f} ms (sdpa), "
                  f"{d['fa4_ms']:.0f} ms (flash-attn-4).", "",
                  "| cube | rule | backend | rel. error | top-1 agreement | layers with the reference's pairs | "
                  "pairs / reference's | union / kept | prefill (ms) |", "|---|---|---|---|---|---|---|---|---|"]
        for r in lg["rows"]:
            lines.append(f"| {r['cube']} | {r['rule']} | {r['backend']} | {fmt(r.get('rel_err'))} | "
                         f"{fmt(r.get('top1_agree'))} | {r.get('layers_same_pairs', '-')} | "
                         f"{fmt(r.get('pairs_vs_reference'), 4)} | {fmt(r.get('union_over_kept'))} | "
                         f"{fmt(r.get('prefill_ms'), 4)} {r.get('error', '')[:200]} |")
        lines.append("")
    if "cli" in results:
        cli = results["cli"]
        lines += [f"`adaspark-eval sweep` per backend ({cli['frames']} frames, {cli['limit']} questions; predictions "
                  "and per-layer kept fractions against the reference backend's, dense flash-attn-4 against dense "
                  "sdpa):", "", "| command | exit | wall (s) |", "|---|---|---|"]
        for name, c in cli["commands"].items():
            lines.append(f"| `{c['command']}` | {c['exit']} | {c['wall_s']} {' / '.join(c['tail'])[:300]} |")
        lines += ["", "| backend | run | samples | errors | same prediction | same answer | max kept-fraction diff | "
                  "LLM-prefill FLOP reduction | union / kept | mean prefill (s) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in cli["rows"]:
            lines.append(f"| {r['backend']} | {r['run']} | {r['samples']} | {r['errors']} | "
                         f"{r.get('same_prediction', '-')} | {r.get('same_parsed', '-')} | "
                         f"{fmt(r.get('max_kept_fraction_diff'))} | {fmt(r.get('llm_prefill_reduction'))} | "
                         f"{fmt(r.get('union_over_kept'))} | {fmt(r.get('mean_prefill_s'))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", type=Path, help="eval_setup.py's --out folder (checkpoint/, data/)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--sections", default="logits,cli")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--keep", type=int, default=64, help="logits positions compared (the prompt's end)")
    parser.add_argument("--limit", type=int, default=4, help="questions per CLI run")
    parser.add_argument("--runs", default="fa4,reference,triton,dense", help="cli: which sweeps, in this order")
    parser.add_argument("--model", help="cli: another model than SETUP/checkpoint (a dry run: tiny)")
    parser.add_argument("--device", default="cuda", help="cli: the runs' device (a dry run: cpu)")
    parser.add_argument("--markdown", type=Path, help="print the tables of this fa4_run.json and stop")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    from benchmarks.kernel_bench.report import FA4_VERSIONS, environment

    env = environment(argv, "benchmarks/fa4_run.py", versions=FA4_VERSIONS)
    results: dict[str, Any] = {"environment": env}
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        (args.out / "fa4_run.json").write_text(json.dumps(results, indent=1))

    chosen = args.sections.split(",")
    if "logits" in chosen:
        results["logits"] = logits_section(args.setup, args.frames, args.keep)
        save()
    if "cli" in chosen:
        results["cli"] = cli_section(args.setup, args.out, args.frames, args.limit, args.model, args.device,
                                     tuple(args.runs.split(",")))
        save()
    print(markdown(results))


if __name__ == "__main__":
    main(sys.argv[1:])
