"""The report side of ``benchmarks/bench_kernels.py`` (its measurements need a GPU): ``--update`` merging."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import bench_kernels  # noqa: E402 - a script beside the package, not in it

ENV = {"device": "GPU", "torch": "2", "triton": "3", "transformers": "5", "cuda": "13", "cudnn": 9, "python": "3",
       "command": "bench", "date": "2026-11-26 07:00 UTC"}


def test_update_replaces_only_the_rerun_sections_and_the_report_names_the_rerun():
    earlier = {"environment": ENV, "ffn": ["old ffn"], "prefill": ["old prefill"]}
    fresh = {"environment": {**ENV, "date": "2026-11-26 08:00 UTC", "command": "bench --sections ffn"},
             "ffn": ["new ffn"]}
    merged = bench_kernels.merged(earlier, fresh, ["ffn", "check"])  # check asked for, not run yet: kept as is
    assert merged["ffn"] == ["new ffn"] and merged["prefill"] == ["old prefill"] and "check" not in merged
    assert merged["environment"] == ENV
    again = bench_kernels.merged(merged, fresh, ["ffn"])
    assert [r["date"] for r in again["reruns"]] == ["2026-11-26 08:00 UTC"] * 2
    report = bench_kernels.markdown({"environment": ENV, "reruns": merged["reruns"]})
    assert "Rerun later, replacing their sections: ffn (GPU, 2026-11-26 08:00 UTC, `bench --sections ffn`)" \
        in report
