"""Several GPUs of one host (issue 9): data parallel and device-map runs against a one-GPU run, a killed
data-parallel run resumed, and a 72B-architecture prefill split over the GPUs.

    PYTHONPATH=. python3 benchmarks/multi_gpu.py --data-root ROOT --out OUT_DIR [--sections parity split]

``parity``: ``adaspark-eval run --task videoniah`` on ROOT with the embedded niah-small, as one process on
one GPU, as ``--num-processes N`` (one GPU each) and as ``--device-map auto`` (the model split over every
GPU); every record (prediction, parse, FLOPs, per-layer statistics; not latency) and the summary's scores
must match. Then a ``--num-processes N`` run killed after a few samples and run again: finished samples are
kept, not recomputed, and the result equals the one-GPU run.

``split``: Qwen2.5-VL-72B's architecture with random bf16 weights (145 GB;
``kernel_bench.common.prefill_config``) on ``bench_kernels.py``' benchmark sequence, placed by
``models.placement.layer_device_map`` over every GPU, one prefill dense and with AdaSpark.

Writes ``multi_gpu.json`` and ``MULTI_GPU.md`` to OUT_DIR.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: ``benchmarks.kernel_bench``
from adaspark_eval.config import AdaSparkConfig  # noqa: E402
from adaspark_eval.flops.counter import count_sample  # noqa: E402
from adaspark_eval.models.placement import PREFIX, dispatch, input_device, layer_device_map  # noqa: E402
from adaspark_eval.results.store import read_run_samples  # noqa: E402
from adaspark_eval.sparse.runtime import SparseRuntime  # noqa: E402
from benchmarks.kernel_bench.common import prefill_config, video_inputs  # noqa: E402 - beside the package

# -------------------------------------------------------------------------------------------- parity


def cli(root: Path, output: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "adaspark_eval.cli.main", "run", "--task", "videoniah", "--model", "niah-small",
            "--data-root", str(root), "--output", str(output), "--p", "0.7", *flags]


def timed_run(command: list[str]) -> float:
    """Run ``command`` to the end (its output echoed); wall seconds."""
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def comparable(folder: Path) -> dict:
    """The run's records less their latency (the one field that may differ between runs)."""
    return {json.dumps(k): {f: v for f, v in r.items() if f != "latency"} for k, r in read_run_samples(folder).items()}


def parity_section(root: Path, work: Path, gpus: int) -> dict[str, Any]:
    runs = {"one GPU": ["--device", "cuda:0"], f"--num-processes {gpus}": ["--num-processes", str(gpus)],
            "--device-map auto": ["--device-map", "auto"]}
    folders = {name: work / name.replace(" ", "_").replace("-", "") for name in runs}
    seconds = {name: timed_run(cli(root, folders[name], *flags)) for name, flags in runs.items()}
    reference = comparable(folders["one GPU"])
    summaries = {name: json.loads((folder / "summary.json").read_text()) for name, folder in folders.items()}
    rows = [{"run": name, "wall_s": seconds[name], "samples": len(comparable(folders[name])),
             "records_equal_one_gpu": comparable(folders[name]) == reference,
             "scores": summaries[name]["scores"], "flop_reduction": summaries[name]["flop_reduction"]}
            for name in runs]

    killed_folder = work / "killed"
    process = subprocess.Popen(cli(root, killed_folder, "--num-processes", str(gpus)), start_new_session=True)
    while len(read_run_samples(killed_folder)) < len(reference) // 3 and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = read_run_samples(killed_folder)
    resumed_s = timed_run(cli(root, killed_folder, "--num-processes", str(gpus)))
    after = read_run_samples(killed_folder)
    resume = {"finished_before_kill": len(before), "samples": len(after), "resumed_wall_s": resumed_s,
              "finished_kept_unchanged": all(after[key] == record for key, record in before.items()),
              "records_equal_one_gpu": comparable(killed_folder) == reference}
    return {"runs": rows, "resume": resume}


# -------------------------------------------------------------------------------------------- split


def build_split(config: transformers.Qwen2_5_VLConfig, devices: list[str]
                ) -> tuple[transformers.Qwen2_5_VLForConditionalGeneration, dict[str, str]]:
    """``config``'s architecture, random bf16 weights made on the device each module is mapped to."""
    with torch.device("meta"):
        model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    device_map = layer_device_map(config, devices)
    generator = {device: torch.Generator(device).manual_seed(0) for device in devices}
    for name, device in device_map.items():
        module = model.get_submodule(name)
        module.to_empty(device=device)
        with torch.no_grad():
            for parameter_name, parameter in module.named_parameters():
                if parameter.dim() > 1:
                    parameter.normal_(0.0, 0.02, generator=generator[device])
                else:
                    parameter.fill_(0.0 if parameter_name.endswith("bias") else 1.0)
    rotary = type(model.model.language_model.rotary_emb)  # its inv_freq is a buffer: made again, not random
    model.model.language_model.rotary_emb = rotary(config.text_config).to(device_map[f"{PREFIX}.rotary_emb"])
    return dispatch(model.eval(), device_map), device_map


def split_section(devices: list[str], tokens: int, settings: list[dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    model, device_map = build_split(prefill_config("qwen2.5-vl-72b"), devices)
    build_s = time.perf_counter() - start
    ids, grid = video_inputs(tokens, input_device(device_map))
    forward = functools.partial(model, input_ids=ids, video_grid_thw=grid, logits_to_keep=1, use_cache=False)
    rows = []
    for setting in [{"dense": True}, *settings]:
        sparse = None if setting.get("dense") else SparseRuntime.attach(model, AdaSparkConfig(**setting))
        with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION], set_priority=True):
            forward()
            for device in devices:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for _ in range(3):
                begin = time.perf_counter()
                forward()
                for device in devices:
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - begin)
        row = {"setting": "dense (SDPA cuDNN)" if sparse is None else setting, "s": sorted(times)[1],
               "peak_gib": [torch.cuda.max_memory_allocated(device) / 2**30 for device in devices]}
        if sparse is not None:
            flops = count_sample(model.config, sparse.records, video_grid_thw=grid).llm_prefill
            row.update(flop_ratio=flops.dense / flops.actual)
            sparse.detach()
        rows.append(row)
        print(f"  split {row}", flush=True)
    layers = {device: sum(1 for name, d in device_map.items() if d == device and ".layers." in name)
              for device in devices}
    return {"tokens": tokens, "build_s": build_s, "layers_per_device": layers, "rows": rows}


# -------------------------------------------------------------------------------------------- report


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [f"# Several GPUs: {env['gpus']} x {env['device']}", "",
             f"`{env['command']}` ({env['date']}; torch {env['torch']}, transformers {env['transformers']})", ""]
    if "parity" in results:
        parity = results["parity"]
        lines += ["## Records and scores against one GPU (niah-small, VideoNIAH demo set, p = 0.7)", "",
                  "| run | samples | records equal | overall | LLM prefill FLOPs -% | wall s |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['run']} | {r['samples']} | {r['records_equal_one_gpu']} | {r['scores']['videoniah/overall']:.1f} "
                  f"| {100 * r['flop_reduction']['llm_prefill']:.1f} | {r['wall_s']:.0f} |" for r in parity["runs"]]
        resume = parity["resume"]
        lines += ["", f"Killed `--num-processes` run: {resume['finished_before_kill']} samples finished before "
                  f"SIGKILL, kept unchanged: {resume['finished_kept_unchanged']}; after the rerun "
                  f"{resume['samples']} samples, records equal to one GPU: {resume['records_equal_one_gpu']} "
                  f"(rerun {resume['resumed_wall_s']:.0f} s).", ""]
    if "split" in results:
        split = results["split"]
        lines += [f"## Qwen2.5-VL-72B architecture (random bf16 weights) split over the GPUs, "
                  f"{split['tokens']} tokens, one prefill", "",
                  f"Decoder layers per device: {split['layers_per_device']}; built in {split['build_s']:.0f} s.", "",
                  "| setting | s (median of 3) | speedup | FLOP ratio | peak GiB per GPU |", "|---|---|---|---|---|"]
        dense = split["rows"][0]["s"]
        lines += [f"| {r['setting']} | {r['s']:.2f} | {dense / r['s']:.2f}x | {r.get('flop_ratio', 1.0):.2f}x | "
                  f"{', '.join(f'{g:.1f}' for g in r['peak_gib'])} |" for r in split["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="data root holding videoniah/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sections", nargs="+", default=["parity", "split"], choices=["parity", "split"])
    parser.add_argument("--tokens", type=int, default=16384, help="split: prefill length")
    args = parser.parse_args(argv)
    gpus = torch.cuda.device_count()
    if gpus < 2:
        raise SystemExit(f"{gpus} GPU(s) visible: this benchmark needs at least 2")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"environment": {
        "device": torch.cuda.get_device_name(), "gpus": gpus, "torch": torch.__version__,
        "transformers": transformers.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "PYTHONPATH=. python3 benchmarks/multi_gpu.py " + " ".join(argv)}}

    def save() -> None:
        (args.out / "multi_gpu.json").write_text(json.dumps(results, indent=1))
        (args.out / "MULTI_GPU.md").write_text(markdown(results))

    if "parity" in args.sections:
        results["parity"] = parity_section(args.data_root, args.out / "runs", gpus)
        save()
    if "split" in args.sections:
        settings = [{"fixed_ratio": 0.5}, {"fixed_ratio": 0.25}, {"p": 0.7}]
        results["split"] = split_section([f"cuda:{i}" for i in range(gpus)], args.tokens, settings)
        save()


if __name__ == "__main__":
    main(sys.argv[1:])
