"""The fixture generator writes each benchmark in its official on-disk layout, and the readers read it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from adaspark_eval.datasets import BENCHMARKS
from adaspark_eval.datasets.check import check_dataset
from adaspark_eval.datasets.fixtures import write_fixtures

VIDEOMME_COLUMNS = ["video_id", "duration", "domain", "sub_category", "url", "videoID", "question_id", "task_type",
                    "question", "options", "answer"]
MLVU_COLUMNS = ["video_name", "duration", "question", "candidates", "answer", "task_type", "question_id"]
VNBENCH_FIELDS = {"video", "question", "options", "gt", "gt_option", "needle_time", "length", "type", "try"}


def test_official_layouts(benchmark_root: Path) -> None:
    videomme = pq.read_table(benchmark_root / "videomme/videomme/test-00000-of-00001.parquet")
    assert videomme.column_names == VIDEOMME_COLUMNS
    videos = videomme.column("videoID").to_pylist()
    assert all((benchmark_root / "videomme/data" / f"{video}.mp4").is_file() for video in videos)
    mlvu = pq.read_table(benchmark_root / "mlvu_dev/mlvu/test-00000-of-00001.parquet")
    assert mlvu.column_names == MLVU_COLUMNS
    assert all((benchmark_root / "mlvu_dev" / v).is_file() for v in mlvu.column("video_name").to_pylist())
    niah = json.loads((benchmark_root / "videoniah/videoniah-4try.json").read_text())
    assert len(niah) == 8 and all(VNBENCH_FIELDS <= set(row) for row in niah)


def test_every_fixture_checks_clean_with_unique_ids(benchmark_root: Path) -> None:
    for benchmark in BENCHMARKS.values():
        check = check_dataset(benchmark, benchmark_root)
        assert check.ok, check.lines()
        docs = benchmark.read_docs(benchmark_root)
        assert len({benchmark.sample_id(doc) for doc in docs}) == len(docs) == check.samples
        assert all(Path(doc["video_path"]).is_absolute() and doc["benchmark"] == benchmark.name for doc in docs)
        assert all(benchmark.gold(doc) in "ABCD" for doc in docs)


def test_same_seed_same_annotations(tmp_path: Path) -> None:
    first = write_fixtures(tmp_path / "a", tasks=["videomme", "mlvu_dev"], samples=2, seed=3, frames=4)
    second = write_fixtures(tmp_path / "b", tasks=["videomme", "mlvu_dev"], samples=2, seed=3, frames=4)
    for name in ("videomme/videomme", "mlvu_dev/mlvu"):
        rows = [pq.read_table(root / name / "test-00000-of-00001.parquet").to_pylist() for root in (first, second)]
        assert rows[0] == rows[1]


def test_repeated_question_ids_get_distinct_sample_ids(benchmark_root: Path, tmp_path: Path) -> None:
    table = pq.read_table(benchmark_root / "mlvu_dev/mlvu/test-00000-of-00001.parquet").to_pylist()
    rows = [{**row, "question_id": "same"} for row in table]
    (tmp_path / "mlvu_dev/mlvu").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mlvu_dev/mlvu/test-00000-of-00001.parquet")
    benchmark = BENCHMARKS["mlvu_dev"]
    assert [benchmark.sample_id(doc) for doc in benchmark.read_docs(tmp_path)] == ["same", "same#2"]
