"""Answer parsing and scoring on hand-written predictions give the known scores, through the same
``process_results`` / ``aggregate`` functions the lmms-eval task YAMLs name."""

from __future__ import annotations

import math

import pytest

from adaspark_eval.datasets import get_benchmark
from adaspark_eval.lmms.task import aggregate, process_results


def scores(docs: list[dict], predictions: list[str]) -> dict[str, float]:
    """metric -> score, as lmms-eval computes it: one process_results per doc, one aggregation per metric."""
    items = [process_results(doc, [prediction]) for doc, prediction in zip(docs, predictions, strict=True)]
    return {metric: aggregate([item[metric] for item in items]) for metric in items[0]}


def videomme_doc(qid: str, duration: str, domain: str, task_type: str, answer: str) -> dict:
    return {"benchmark": "videomme", "question_id": qid, "videoID": f"v{qid}", "duration": duration, "domain": domain,
            "sub_category": "Law", "task_type": task_type, "answer": answer, "question": "?",
            "options": ["A. a", "B. b", "C. c", "D. d"]}


def test_videomme() -> None:
    docs = [videomme_doc("1", "short", "Knowledge", "Temporal Perception", "A"),
            videomme_doc("2", "short", "Knowledge", "Counting Problem", "B"),
            videomme_doc("3", "medium", "Film & Television", "Counting Problem", "D"),
            videomme_doc("4", "long", "Multilingual", "OCR Problems", "C")]
    predictions = ["A", "The answer is (C).", "D. a dog", ""]
    parsed = [get_benchmark("videomme").judge(d, p).parsed for d, p in zip(docs, predictions, strict=True)]
    assert parsed == ["A", "C", "D", None]
    result = scores(docs, predictions)
    assert result["overall"] == 50.0
    assert (result["short"], result["medium"], result["long"]) == (50.0, 100.0, 0.0)
    assert (result["domain_knowledge"], result["domain_film_television"], result["domain_multilingual"]) == (50, 100, 0)
    tasks = ("task_counting_problem", "task_temporal_perception", "task_ocr_problems")
    assert [result[task] for task in tasks] == [50, 100, 0]
    assert math.isnan(result["domain_sports_competition"])


def mlvu_doc(qid: str, task_type: str, answer: str) -> dict:
    return {"benchmark": "mlvu_dev", "question_id": qid, "task_type": task_type, "answer": answer,
            "question": "?\n(A) a\n(B) b\n(C) c\n(D) d"}


def test_mlvu_m_avg_is_the_mean_over_all_seven_task_types() -> None:
    docs = [mlvu_doc("1", "count", "A"), mlvu_doc("2", "count", "B"), mlvu_doc("3", "needle", "C")]
    result = scores(docs, ["(A)", "C", "C) the cat"])
    assert (result["count"], result["needle"]) == (50.0, 100.0)
    assert result["m_avg"] == pytest.approx(150.0 / 7)
    assert math.isnan(result["plotQA"])


def niah_doc(video: str, type_: str, attempt: int, gold: str) -> dict:
    return {"benchmark": "videoniah", "video": video, "type": type_, "try": attempt, "gt_option": gold,
            "question_id": f"{video}_{attempt}", "options": ["w", "x", "y", "z"], "length": 60.0, "depth": 0.5}


def test_videoniah_counts_a_question_only_when_all_four_tries_are_right() -> None:
    docs, predictions = [], []
    questions = (("v1", "ret_edit1", "ABCD"), ("v2", "ret_insert1", "BCDA"), ("v3", "cnt_edit1", "CDAB"))
    for video, type_, answers in questions:
        for attempt, gold in enumerate(answers):
            docs.append(niah_doc(video, type_, attempt, gold))
            wrong = "ABCD"[("ABCD".index(gold) + 1) % 4]
            right = video != "v2" or attempt < 3  # v2's last try is wrong
            predictions.append(f"The answer is {gold}" if right else f"({wrong})")
    result = scores(docs, predictions)
    assert (result["ret_edit1"], result["ret_insert1"], result["cnt_edit1"]) == (100.0, 0.0, 100.0)
    assert (result["ret"], result["cnt"], result["overall"]) == (50.0, 100.0, 75.0)
    assert math.isnan(result["ord"])
