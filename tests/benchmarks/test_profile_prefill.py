"""The GPU timeline of ``benchmarks/profile_prefill.py`` (its profiling needs a GPU)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import profile_prefill  # noqa: E402 - a script beside the package, not in it


def test_timeline_splits_busy_and_idle_time_and_names_the_kernels_around_the_longest_gaps():
    kernels = [(100.0, 300.0, "b"), (0.0, 50.0, "a"), (120.0, 200.0, "overlapping"), (1300.0, 1400.0, "c"),
               (1400.0, 1500.0, "d"), (1700.0, 1800.0, "e")]
    busy, idle, gaps = profile_prefill.timeline(kernels, count=2)
    assert busy == (50 + 200 + 200 + 100) / 1e3
    assert idle == (50 + 1000 + 200) / 1e3
    assert gaps == [profile_prefill.Gap(1.0, "b", "c"), profile_prefill.Gap(0.2, "d", "e")]
