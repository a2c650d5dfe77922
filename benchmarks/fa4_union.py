"""The extra work of 64-token cubes on flash-attn-4 (issue 24) on the embedded model's demo set: with two cubes
per 128-query block, flash-attn-4 computes the union of the two cubes' kept units for both (the other cube's
rows masked). The union depends on the kept sets only, so this measures it on the CPU from the reference
path's ``select=cube`` selections, through the same block tables the GPU path builds (``kernels.blocks``).

    PYTHONPATH=. python3 benchmarks/fa4_union.py --out DIR [--n 6] [--p 0.7 0.5]

Generates a VideoNIAH set as ``benchmarks/embedded_niah.sh`` does (held-out seeds), runs ``adaspark-eval run
--model niah-small --select cube`` at each ``p`` and writes ``fa4_union.json``: per sample, the (query cube,
key unit) pairs kept and those the 128 x 64 blocks compute, summed over the prefill's layers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typer.testing import CliRunner  # noqa: E402

import adaspark_eval.sparse.attention as attention  # noqa: E402
from adaspark_eval.cli.main import app  # noqa: E402
from adaspark_eval.sparse.kernels.blocks import BLOCK_TILES, build_block_tables  # noqa: E402
from adaspark_eval.sparse.kernels.tiles import build_tiles  # noqa: E402

SELECT_PER_UNIT = attention.select_per_unit
samples: list[dict[str, int]] = []


def recording(query, kbar, layout, rule, scaling, positions):
    """``select_per_unit`` that also adds the layer's block tables' work to the current sample (a new sample
    at each new layout: one per prefill)."""
    keep, tallies = SELECT_PER_UNIT(query, kbar, layout, rule, scaling, positions)
    tiles = build_tiles(layout, rule.text_keys)
    if tiles.tile in BLOCK_TILES:
        tables = build_block_tables(keep, tiles)
        if not samples or samples[-1]["layout"] != id(layout):
            samples.append({"layout": id(layout), "kept_units": 0, "block_units": 0, "layers": 0,
                            "units": layout.num_units, "tile": tiles.tile})
        samples[-1]["kept_units"] += int(tables.kept_units.sum())
        samples[-1]["block_units"] += int(tables.block_units.sum())
        samples[-1]["layers"] += 1
    return keep, tallies


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=6, help="questions (4 tries each)")
    parser.add_argument("--p", type=float, nargs="+", default=[0.7, 0.5])
    args = parser.parse_args(argv)
    runner = CliRunner()
    data = args.out / "data"

    def invoke(*command: str) -> None:
        result = runner.invoke(app, list(command))
        if result.exit_code:
            raise SystemExit(f"{' '.join(command)}: {result.output}")

    invoke("niah", "generate", "--out", str(data / "videoniah"), "--n", str(args.n), "--seed", "3000000",
           "--length", "8", "--resolution", "448x448", "--fps", "1", "--duration", "2",
           "--types", "ret_insert1,ret_insert2", "--tries", "4")
    attention.select_per_unit = recording
    report = {"command": "PYTHONPATH=. python3 benchmarks/fa4_union.py " + " ".join(argv), "points": []}
    for p in args.p:
        samples.clear()
        invoke("run", "--task", "videoniah", "--data-root", str(data), "--model", "niah-small", "--dtype",
               "float32", "--select", "cube", "--p", str(p), "--output", str(args.out / f"run-p{p}"))
        ratios = [s["block_units"] / s["kept_units"] for s in samples if s["kept_units"]]
        point = {"p": p, "samples": len(ratios), "units": sorted({s["units"] for s in samples}),
                 "tile": sorted({s["tile"] for s in samples}),
                 "union_over_kept_mean": sum(ratios) / len(ratios), "union_over_kept_min": min(ratios),
                 "union_over_kept_max": max(ratios),
                 "per_sample": [{k: s[k] for k in ("kept_units", "block_units", "layers")} for s in samples]}
        report["points"].append(point)
        print({k: v for k, v in point.items() if k != "per_sample"}, flush=True)
    (args.out / "fa4_union.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
