"""VideoNIAH scoring: option parsing, the all-tries-right rule, task means, the depth x length table."""

import math

import pytest

from adaspark_eval.data.niah.scoring import depth_length_table, parse_choice, score


@pytest.mark.parametrize("text, letter", [
    ("B", "B"), ("(B)", "B"), ("b", "B"), ("c.", "C"), ("[D]", "D"), ("B. red", "B"), ("(c) blue circle", "C"),
    ("D red star", "D"), ("The answer is B", "B"), ("answer: (c)", "C"), ("Option C.", "C"),
    ("The correct option is b.", "B"), ("I think the answer is D because it is red.", "D"),
    ("I think (A) fits", "A"), ("Based on the video, C", "C"), ("Answer: A", "A"), ("A", "A"),
    ("A red star", None), ("Answer: a red star", None), ("none of these", None), ("E", None), ("", None),
])
def test_parse_choice(text, letter):
    assert parse_choice(text) == letter


OPTIONS = ["red star", "red circle", "blue star", "pink cross"]


@pytest.mark.parametrize("text, letter", [
    ("red star", "A"), ("The blue star.", "C"), ("PINK CROSS", "D"), ("red", None), ("a red starfish", None),
    ("red star or red circle", None), ("yellow circle", None), ("red circle. The answer is A.", "A"),
])
def test_parse_choice_by_option_text_when_no_letter(text, letter):
    assert parse_choice(text, OPTIONS) == letter


def tries(video, type_, rights, question_id=None, **extra):
    """Records of one question: try k is right when rights[k]."""
    return [{"video": video, "type": type_, "try": k, "correct": right, **extra,
             **({"question_id": f"{question_id}_{k}"} if question_id else {})}
            for k, right in enumerate(rights)]


RECORDS = [
    *tries("v1", "ret_edit1", [True] * 4),
    *tries("v2", "ret_edit1", [True, True, False, True]),
    *tries("v3", "ret_insert1", [True] * 4),
    *tries("v4", "ord_edit1", [True] * 3),               # a try is missing
    *tries("v5", "cnt_edit1", [True] * 4),
    *tries("v6", "cnt_edit1", [True] * 4),
]


def test_circular_score_needs_every_try_right():
    result = score(RECORDS)
    assert result == pytest.approx({"ret_edit1": 50.0, "ret_insert1": 100.0, "ord_edit1": 0.0, "cnt_edit1": 100.0,
                                    "ret": 75.0, "ord": 0.0, "cnt": 100.0, "overall": 175.0 / 3})


def test_single_try_scores_every_record():
    result = score(RECORDS, circular=False)
    assert result["ret_edit1"] == 87.5 and result["ord_edit1"] == 100.0
    assert result["ret"] == 93.75 and result["overall"] == pytest.approx((93.75 + 100 + 100) / 3)


def test_fewer_tries_can_be_asked_for():
    assert score(tries("v", "ord_edit1", [True] * 3), tries=3)["ord"] == 100.0


def test_question_ids_split_questions_on_one_video():
    records = tries("v", "cnt_edit2", [True] * 4, question_id="v_q1") + tries("v", "cnt_edit2", [False] * 4,
                                                                          question_id="v_q2")
    assert score(records)["cnt_edit2"] == 50.0


def test_missing_tasks_are_left_out_of_overall():
    result = score(tries("v", "ret_edit1", [True] * 4))
    assert result == {"ret_edit1": 100.0, "ret": 100.0, "overall": 100.0}


def test_depth_length_table():
    records = [*tries("a", "ret_edit1", [True] * 4, depth=0.1, length=60.0),
               *tries("b", "ret_edit1", [True, False, True, True], depth=0.15, length=60.0),
               *tries("c", "ret_insert1", [True] * 4, depth=0.9, length=600.0),
               *tries("d", "ret_insert1", [True] * 4, needle_time=[540.0], length=600.0)]  # depth from needle_time
    table = depth_length_table(records)
    assert list(table.columns) == [60.0, 600.0] and len(table) == 5
    assert table.iloc[0][60.0] == 50.0 and table.iloc[4][600.0] == 100.0
    assert table.notna().sum().sum() == 2
    binned = depth_length_table(records, depth_bins=[0, 0.5, 1], length_bins=[0, 100, 1000])
    assert binned.shape == (2, 2) and binned.iloc[1, 1] == 100.0 and math.isnan(binned.iloc[1, 0])


def test_no_records_is_an_error():
    with pytest.raises(ValueError, match="no records"):
        score([])
