"""``data check`` flags missing and corrupt videos and a missing or unreadable annotation, naming the files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adaspark_eval.datasets import get_benchmark
from adaspark_eval.datasets.check import check_dataset

VIDEOMME = get_benchmark("videomme")


def broken_copy(benchmark_root: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the Video-MME fixture with its first video deleted and its second overwritten with
    garbage; returns (root, missing video, corrupt video)."""
    shutil.copytree(benchmark_root / "videomme", tmp_path / "videomme")
    docs = VIDEOMME.read_docs(tmp_path)
    missing, corrupt = Path(docs[0]["video_path"]), Path(docs[1]["video_path"])
    missing.unlink()
    corrupt.write_bytes(b"not an mp4 at all" * 64)
    return tmp_path, missing, corrupt


def test_flags_missing_and_corrupt_videos(benchmark_root: Path, tmp_path: Path) -> None:
    root, missing, corrupt = broken_copy(benchmark_root, tmp_path)
    check = check_dataset(VIDEOMME, root)
    assert check.usable and not check.ok
    assert check.missing == [missing]
    assert len(check.corrupt) == 1 and str(corrupt) in check.corrupt[0] and "cannot be decoded" in check.corrupt[0]
    report = "\n".join(check.lines())
    assert "INCOMPLETE" in report and str(missing) in report and str(corrupt) in report


def test_presence_only_check_does_not_decode(benchmark_root: Path, tmp_path: Path) -> None:
    root, missing, _ = broken_copy(benchmark_root, tmp_path)
    check = check_dataset(VIDEOMME, root, decode=False)
    assert check.missing == [missing] and check.corrupt == []


def test_missing_annotation_says_where_the_official_file_goes(tmp_path: Path) -> None:
    check = check_dataset(VIDEOMME, tmp_path)
    assert not check.usable
    assert str(tmp_path / "videomme/videomme/test-00000-of-00001.parquet") in check.problem
    assert "lmms-lab/Video-MME" in check.problem
    assert check.lines() == [f"videomme: MISSING: {check.problem}"]


def test_unreadable_annotation(benchmark_root: Path, tmp_path: Path) -> None:
    shutil.copytree(benchmark_root / "mlvu_dev", tmp_path / "mlvu_dev")
    (tmp_path / "mlvu_dev/mlvu/test-00000-of-00001.parquet").write_bytes(b"PAR1 truncated")
    check = check_dataset(get_benchmark("mlvu_dev"), tmp_path)
    assert not check.usable and "cannot be read" in check.problem and "sy1998/MLVU_dev" in check.problem
    assert check.invalid and check.lines()[0].startswith("mlvu_dev: INVALID: ")  # damaged, not MISSING


def without_field(benchmark_root: Path, tmp_path: Path, field: str) -> Path:
    """A copy of the MLVU fixture whose annotation lacks column ``field``; returns its annotation path."""
    import pyarrow.parquet as pq

    shutil.copytree(benchmark_root / "mlvu_dev", tmp_path / "mlvu_dev")
    annotation = tmp_path / "mlvu_dev/mlvu/test-00000-of-00001.parquet"
    pq.write_table(pq.read_table(annotation).drop_columns([field]), annotation)
    return annotation


def test_annotation_without_a_scorer_field_is_one_line_naming_file_and_field(benchmark_root: Path,
                                                                             tmp_path: Path) -> None:
    annotation = without_field(benchmark_root, tmp_path, "candidates")
    check = check_dataset(get_benchmark("mlvu_dev"), tmp_path)
    assert check.invalid and not check.usable
    [line] = check.lines()
    assert line.startswith(f"mlvu_dev: INVALID: {annotation} has no field 'candidates' in 2 of 2 rows (first: row 0), "
                           "which the scorers read")


def test_empty_annotation_is_invalid(benchmark_root: Path, tmp_path: Path) -> None:
    shutil.copytree(benchmark_root / "videoniah", tmp_path / "videoniah")
    annotation = get_benchmark("videoniah").annotation(tmp_path)
    annotation.write_text("[]")
    check = check_dataset(get_benchmark("videoniah"), tmp_path)
    assert check.invalid and check.lines() == [f"videoniah: INVALID: {check.problem}"]
    assert check.problem.startswith(f"{annotation} holds no annotation rows")


def test_a_missing_try_is_named_though_the_row_ids_need_it(benchmark_root: Path, tmp_path: Path) -> None:
    import json

    shutil.copytree(benchmark_root / "videoniah", tmp_path / "videoniah")
    annotation = get_benchmark("videoniah").annotation(tmp_path)
    rows = json.loads(annotation.read_text())
    del rows[1]["try"]
    annotation.write_text(json.dumps(rows))
    check = check_dataset(get_benchmark("videoniah"), tmp_path)
    assert check.invalid and "has no field 'try' in 1 of" in check.problem and "(first: row 1)" in check.problem


def test_run_data_check_stops_before_the_model(benchmark_root: Path, tmp_path: Path) -> None:
    from adaspark_eval.datasets import AnnotationInvalid, parse_tasks
    from adaspark_eval.evaluation.runner import check_data

    annotation = without_field(benchmark_root, tmp_path, "task_type")
    with pytest.raises(AnnotationInvalid, match=f"^mlvu_dev: {annotation} has no field 'task_type'"):
        check_data(parse_tasks("mlvu_dev"), tmp_path)
