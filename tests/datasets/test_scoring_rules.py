"""The scoring rules (``datasets.scoring``) on hand-written outputs: the option each rule reads from 45
outputs, whole-set scores under each rule, and the official evaluators' quirks the issue names."""

from __future__ import annotations

import math

import pytest

from adaspark_eval.datasets.scoring import (DEFAULT_RULES, RecordsUnscorable, UnknownRule, get_rule, rule_name,
                                            score_records)
from adaspark_eval.datasets.scoring import mlvu, videomme

OPTIONS = ["red star", "blue circle", "green square", "pink cross"]
_ = None  # no option read

# output: (lmms: lmms-eval's extract_mcq_answer, the same for Video-MME and MLVU; Video-MME official;
#          MLVU official (the text check_ans compares, when one visible character); VideoNIAH lenient (with
#          OPTIONS); VideoNIAH official)
CHOICES = {
    "A": ("A", "A", "A", "A", "A"),
    "B": ("B", "B", "B", "B", "B"),
    "C": ("C", "C", "C", "C", "C"),
    "D": ("D", "D", "D", "D", "D"),
    "(B)": ("B", "B", "B", "B", "B"),
    "B.": ("B", "B", _, "B", "B"),                          # MLVU: no ")", and "B." != "B"
    "B) blue circle": ("B", "B", "B", "B", "B"),
    "Answer: C": ("C", "A", _, "C", "A"),                   # official Video-MME and VNBench: the A of "Answer"
    "Best option: (A)": ("A", "B", "A", "A", "A"),          # Video-MME: its prefix never matches, B of "Best"
    "The best answer is D": ("D", "D", _, "D", "D"),
    "The answer is (C).": ("C", "C", "C", "C", "C"),
    "b": (_, _, "b", "B", _),                               # MLVU official compares "b" with "B": wrong
    "(c)": (_, _, "c", "C", _),
    "A and D": ("A", "A", _, "D", "A"),                     # lenient reads the leading A as the article
    "D or B": ("D", "D", _, "D", "B"),                      # VNBench looks for A, B, C, D in that order
    "blue circle": (_, _, _, "B", _),                       # only the lenient rule reads option text
    "": (_, _, _, _, _),
    " \t ": (_, _, _, _, _),
    "B\n": ("B", "B", _, "B", "B"),                         # MLVU strips nothing
    " B": ("B", "B", _, "B", "B"),
    "\uff22": (_, _, "\uff22", _, _),                       # fullwidth B: no rule takes it for B
    "答案是C": ("C", "C", _, "C", "C"),
    "选项B。": ("B", "B", _, "B", "B"),
    "The answer is B": ("B", "B", _, "B", "B"),             # MLVU: the whole output must be the letter
    ")B": ("B", "B", _, "B", "B"),                          # MLVU: the character before a leading ")" is ""
    "E": (_, _, "E", _, _),
    "B. blue circle": ("B", "B", _, "B", "B"),
    "Option B": ("B", "B", _, "B", "B"),
    "I think the answer is C because it is blue.": ("C", "C", _, "C", "C"),
    "The correct option is D": ("D", "D", _, "D", "D"),
    "The best option is C": ("C", "C", _, "C", "C"),
    "Best answer: C": ("C", "B", _, "C", "B"),              # Video-MME: joined prefix; VNBench: B of "Best"
    ".B": ("B", "B", _, "B", _),                            # VNBench keeps only what precedes the first "."
    "C.": ("C", "C", _, "C", "C"),
    "[D]": ("D", "D", _, "D", "D"),
    "c.": (_, _, _, "C", _),
    "A red star": ("A", "A", _, "A", "A"),                  # lenient: the article, then the option text
    "None of the above": (_, _, _, _, _),
    "BC": ("C", "B", _, _, "B"),                            # two letters
    "(A) red star, (B) blue circle": ("B", "A", "A", "A", "A"),
    "The video shows a pink cross.": (_, _, _, "D", _),
    "Correct: B": ("B", "C", _, "B", "B"),                  # Video-MME: the C of "Correct"
    "B: blue circle": ("B", "B", _, "B", "B"),
    "Answer:B": ("B", "A", _, "B", "A"),
    "d": (_, _, "d", "D", _),
}


def test_the_table_holds_at_least_40_outputs() -> None:
    assert len(CHOICES) >= 40


@pytest.mark.parametrize("text", list(CHOICES))
def test_choice_under_each_rule(text: str) -> None:
    lmms, videomme_official, mlvu_official, lenient, niah_official = CHOICES[text]
    assert videomme.lmms_choice(text) == lmms
    assert mlvu.lmms_choice(text) == lmms
    assert videomme.official_choice(text) == videomme_official
    assert mlvu.official_choice(text) == mlvu_official
    record = {"prediction": text, "niah": {"options": OPTIONS}}
    assert get_rule("videoniah", "lenient").choice(record) == lenient
    assert get_rule("videoniah", "official").choice(record) == niah_official


def test_registry_names() -> None:
    assert DEFAULT_RULES == {"videomme": "lmms", "mlvu_dev": "lmms", "videoniah": "official"}
    assert get_rule("videoniah", "lmms").name == "lenient" == rule_name("videoniah", "lmms")
    assert get_rule("videoniah").name == "official" and get_rule("videomme").name == "lmms"
    assert get_rule("videoniah", "lenient") is get_rule("videoniah", "lmms")
    with pytest.raises(UnknownRule, match="choose from lmms, official$"):
        get_rule("videomme", "lenient")
    with pytest.raises(UnknownRule, match="rules exist for"):
        get_rule("egoschema", "lmms")


def videomme_record(duration: str, domain: str, task_type: str, answer: str, prediction: str | None) -> dict:
    return {"task": "videomme", "sample_id": f"{duration}-{task_type}-{answer}", "prediction": prediction,
            "answer": answer, "category": {"duration": duration, "domain": domain, "sub_category": "Astronomy",
                                           "task_type": task_type}}


VIDEOMME = [
    videomme_record("short", "Knowledge", "Counting Problem", "A", "A"),               # right under both
    videomme_record("short", "Knowledge", "OCR Problems", "B", "Best option: (A)"),    # lmms A; official B
    videomme_record("medium", "Film & Television", "Counting Problem", "C", "c"),      # lmms wrong; official none
    videomme_record("medium", "Film & Television", "OCR Problems", "D", "I cannot tell"),  # likewise
    videomme_record("long", "Knowledge", "Counting Problem", "A", "Answer: C"),        # lmms C; official A
    videomme_record("long", "Knowledge", "OCR Problems", "B", "(B)"),                  # right under both
]


def test_videomme_scores_under_each_rule() -> None:
    lmms = score_records("videomme", VIDEOMME, "lmms")
    assert lmms["overall"] == pytest.approx(100 / 3)  # every sample counts; an unread output is wrong
    assert (lmms["short"], lmms["medium"], lmms["long"]) == (50.0, 0.0, 50.0)
    assert (lmms["domain_knowledge"], lmms["domain_film_television"]) == (50.0, 0.0)
    assert lmms["task_counting_problem"] == pytest.approx(100 / 3)
    official = score_records("videomme", VIDEOMME, "official")
    assert official["overall"] == 100.0  # 4 parsed, all right: the 2 unread outputs leave the denominator
    assert (official["short"], official["medium"], official["long"]) == (100.0, 0.0, 100.0)  # none parsed: 0
    assert (official["domain_knowledge"], official["domain_film_television"]) == (100.0, 0.0)
    assert (official["task_counting_problem"], official["task_ocr_problems"]) == (100.0, 100.0)
    assert set(lmms) == set(official) and "domain_multilingual" not in official  # metrics no sample is in


def test_videomme_failed_sample_answers_the_empty_string() -> None:
    records = [videomme_record("short", "Knowledge", "OCR Problems", "A", "A"),
               videomme_record("short", "Knowledge", "OCR Problems", "B", None)]
    assert score_records("videomme", records, "lmms")["overall"] == 50.0
    assert score_records("videomme", records, "official")["overall"] == 100.0


def test_records_lacking_a_field_name_it() -> None:
    record = videomme_record("short", "Knowledge", "OCR Problems", "A", "A")
    del record["category"]["sub_category"]
    with pytest.raises(RecordsUnscorable, match=r"no category\.sub_category, which the lmms rule reads"):
        score_records("videomme", [record], "lmms")
    assert score_records("videomme", [record], "official")["overall"] == 100.0  # the official rule needs no sub_category


def mlvu_record(task_type: str, answer: str, prediction: str) -> dict:
    return {"task": "mlvu_dev", "sample_id": f"{task_type}-{answer}", "prediction": prediction, "answer": answer,
            "category": {"task_type": task_type}}


MLVU = [
    mlvu_record("count", "A", "(A)"),              # right under both
    mlvu_record("count", "B", "B."),               # lmms right; official wrong
    mlvu_record("needle", "C", "C) the cat"),      # right under both
    mlvu_record("needle", "D", "The answer is D"),  # lmms right; official wrong
    mlvu_record("plotQA", "A", "B"),               # wrong under both
]


def test_mlvu_scores_under_each_rule() -> None:
    lmms = score_records("mlvu_dev", MLVU, "lmms")
    assert (lmms["count"], lmms["needle"], lmms["plotQA"]) == (100.0, 100.0, 0.0)
    assert lmms["m_avg"] == pytest.approx(200 / 7)  # lmms-eval divides by the seven types, present or not
    official = score_records("mlvu_dev", MLVU, "official")
    assert (official["count"], official["needle"], official["plotQA"]) == (50.0, 50.0, 0.0)
    assert official["m_avg"] == pytest.approx(100 / 3)  # the mean over the types present
    assert "ego" not in official and "ego" not in lmms


def niah_records(video: str, type_: str, golds: str, predictions: list[str | None], tries: list[int] | None = None):
    tries = tries or list(range(len(predictions)))
    return [{"task": "videoniah", "sample_id": f"{video}_{type_}_{k}", "prediction": p, "answer": golds[k % 4],
             "niah": {"video": video, "type": type_, "try": k, "options": OPTIONS}}
            for k, p in zip(tries, predictions)]


VIDEONIAH = [
    *niah_records("v1", "ret_edit1", "ABCD", ["A", "B. red star", "C", "D"]),          # right under both
    *niah_records("v2", "ret_insert1", "BCDA", ["The answer is B", "(C)", "Answer: D", "A"]),  # official: A of Answer
    *niah_records("v3", "cnt_edit1", "CDAB", ["C", "D", "A", "b"]),                    # official: "b" reads nothing
    *niah_records("v4", "cnt_edit1", "DABC", ["D", "A", "B", "C", "D"], [0, 1, 2, 3, 0]),  # 5 right: official 0
    *niah_records("v5", "ord_edit1", "ABCD", [None, "B", "C", "D"]),                   # a failed try: wrong
    *niah_records("v6", "cnt_insert1", "BCDA", ["B", "C", "D", "A."]),                 # right under both
]


def test_videoniah_scores_under_each_rule() -> None:
    lenient = score_records("videoniah", VIDEONIAH, "lmms")
    assert (lenient["ret_edit1"], lenient["ret_insert1"], lenient["cnt_edit1"], lenient["cnt_insert1"]) == (
        100.0, 100.0, 100.0, 100.0)
    assert (lenient["ord_edit1"], lenient["ret"], lenient["ord"], lenient["cnt"]) == (0.0, 100.0, 0.0, 100.0)
    assert lenient["overall"] == pytest.approx(200 / 3)  # the mean of ret, ord, cnt
    official = score_records("videoniah", VIDEONIAH, "official")
    assert (official["ret_edit1"], official["ret_insert1"], official["cnt_edit1"], official["cnt_insert1"]) == (
        100.0, 0.0, 0.0, 100.0)
    assert (official["ord_edit1"], official["ret"], official["ord"], official["cnt"]) == (0.0, 50.0, 0.0, 50.0)
    assert official["overall"] == 40.0  # the mean over the five types present, not over the tasks (33.3)


def test_videoniah_official_counts_exactly_four_right_records() -> None:
    four_of_five = niah_records("v", "ret_edit1", "ABCD", ["A", "B", "C", "D", "B"], [0, 1, 2, 3, 0])
    assert score_records("videoniah", four_of_five, "official")["overall"] == 100.0  # 4 right, 1 wrong duplicate
    assert score_records("videoniah", four_of_five, "lenient")["overall"] == 0.0
    three = niah_records("v", "ret_edit1", "ABCD", ["A", "B", "C"])
    assert score_records("videoniah", three, "official")["overall"] == 0.0


def test_videoniah_official_leaves_out_a_question_whose_tries_all_failed() -> None:
    records = [*niah_records("v1", "ret_edit1", "ABCD", ["A", "B", "C", "D"]),
               *niah_records("v2", "ret_edit1", "ABCD", [None] * 4),
               *niah_records("v3", "cnt_edit1", "ABCD", [None] * 4)]
    official = score_records("videoniah", records, "official")
    assert official == {"ret_edit1": 100.0, "ret": 100.0, "overall": 100.0}  # eval.py skips a None pred
    assert score_records("videoniah", records, "lenient")["overall"] == 25.0  # (50 + 0) / 2


def test_videoniah_official_overall_on_nine_types_is_the_mean_of_the_tasks() -> None:
    types = [f"{task}_{kind}" for task in ("ret", "ord", "cnt") for kind in ("edit", "insert1", "insert2")]
    records = []
    for i, type_ in enumerate(types):
        for question in range(2):
            right = (i + question) % 3 != 0
            records += niah_records(f"v{question}", type_, "ABCD", ["A", "B", "C", "D" if right else "A"])
    official = score_records("videoniah", records, "official")
    assert official["overall"] == pytest.approx((official["ret"] + official["ord"] + official["cnt"]) / 3)
    assert not math.isnan(official["overall"])


def test_old_videoniah_records_without_options_are_read_by_letter() -> None:
    record = niah_records("v", "ret_edit1", "BBBB", ["blue circle"])[0]
    assert get_rule("videoniah", "lenient").choice(record) == "B"
    del record["niah"]["options"]
    assert get_rule("videoniah", "lenient").choice(record) is None
