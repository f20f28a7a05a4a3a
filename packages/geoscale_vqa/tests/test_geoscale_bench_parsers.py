"""Each parse mode on verbose and adversarial answers, with the expected reading worked out by hand.

official: the rules of lmms-eval `tasks/xlrs/mcq_utils.py` (XLRS), OmniEarth-Bench
`evaluation/task_config/mcq_utils.py` and RSVQA's `VocabEncoder.encode` (see official_mcq.py,
official_rsvqa.py for the rules); strict: the project's strict-then-fallback reading (answers.py).
"""

import pytest

from geoscale_vqa.benchmarks.answers import extract_bin, extract_lengths, extract_letters, extract_number
from geoscale_vqa.benchmarks.judge import judge
from geoscale_vqa.benchmarks.official_mcq import (
    OMNIEARTH_PREFIXES,
    XLRS_PREFIXES,
    extract_official_letters,
    official_choice_correct,
)
from geoscale_vqa.benchmarks.official_rsvqa import rsvqa_encoding
from geoscale_vqa.benchmarks.records import Answer

# (answer, lmms-eval XLRS letters, OmniEarth-Bench letters, project (status, letters) with options A-D)
MCQ_CASES = [
    ("B", "B", "B", ("strict", "B")),
    # "Answer" is not a prefix (they are case-sensitive, "The answer ..."): every a-e letter counts, A and e too
    ("Answer: C", "ACE", "ACE", ("fallback", "C")),
    ("c.", "", "", ("strict", "C")),  # no capital A-E anywhere: the reference gives ""
    ("Option B is correct", "BCE", "BCE", ("fallback", "B")),  # c, e, c of "correct"
    ("I think it's A", "A", "A", ("unparseable", None)),  # "I think it's" holds no a-e letter
    ("No, B", "B", "B", ("unparseable", None)),
    # XLRS's list glues "The best option is" to "The correct option is": not removed there, removed in OmniEarth's
    ("The best option is B", "BE", "B", ("fallback", "B")),
    ("The correct option is D", "CDE", "D", ("fallback", "D")),
    ("Best option: C", "BCE", "C", ("fallback", "C")),
    ("(B) because (A) is wrong", "AB", "AB", ("strict", "B")),  # parenthesised letters win, both of them
    ("(b) because (a) is wrong", "", "", ("strict", "B")),  # lower case only: no capital A-E, ""
    ("B because A is wrong", "ABCE", "ABCE", ("fallback", "B")),  # b, c, a, e of "because"
    ("The answer is A, C", "AC", "AC", ("fallback", "AC")),
    ("The answer is E", "E", "E", ("invalid", "E")),
    ("F", "", "", ("invalid", "F")),  # F and G are never read by the references (A-E only)
    ("the answer is b", "", "", ("fallback", "B")),
    ("", "", "", ("unparseable", None)),
]


@pytest.mark.parametrize("text, xlrs, omniearth, strict", MCQ_CASES)
def test_multiple_choice_in_each_mode(text, xlrs, omniearth, strict):
    assert extract_official_letters(text, XLRS_PREFIXES) == frozenset(xlrs)
    assert extract_official_letters(text, OMNIEARTH_PREFIXES) == frozenset(omniearth)
    status, letters = extract_letters(text, "ABCD")
    assert (status, letters) == (strict[0], frozenset(strict[1]) if strict[1] else None)


def test_official_truth_is_the_set_of_stored_characters():
    assert official_choice_correct(frozenset("AC"), "AC") and official_choice_correct(frozenset("AC"), "CA")
    assert not official_choice_correct(frozenset("AC"), "A,C")  # the comma is one of the truth's characters
    assert not official_choice_correct(frozenset("AC"), "A C")
    assert not official_choice_correct(frozenset("B"), "(B) oak")
    assert not official_choice_correct(frozenset(), "B")


@pytest.mark.parametrize(
    "text, variant, expected",
    [
        ("Yes.", "rsvqa-lr", ("yes",)),  # one final "." dropped, lower case
        ("yes..", "rsvqa-lr", ("yes.",)),  # only one
        ("Is it?", "rsvqa-lr", ("is", "it")),
        ("0", "rsvqa-lr", ("0",)),  # 0 is not binned
        ("7", "rsvqa-lr", ("between 0 and 10",)),
        ("10", "rsvqa-lr", ("between 0 and 10",)),
        ("11", "rsvqa-lr", ("between 10 and 100",)),
        ("250", "rsvqa-lr", ("between 100 and 1000",)),
        ("1001", "rsvqa-lr", ("more than 1000",)),
        ("7", "rsvqa-hr", ("7",)),  # HR counts are exact
        ("1234m2", "rsvqa-hr", ("more than 1000m2",)),
        ("0m2", "rsvqa-hr", ("0m2",)),
        ("55m2", "rsvqa-lr", ("between 10m2 and 100m2",)),  # the m2 rule applies to LR too
        ("about 2000 m2", "rsvqa-hr", ("about", "2000", "m2")),  # "m2" alone: the reference would raise; kept
        ("3.5", "rsvqa-lr", ("3.5",)),  # not all digits: not binned
        ("Sea and ocean.", "rsvqa-xben", ("sea", "and", "ocean")),
        ("1234m2", "rsvqa-xben", ("1234m2",)),  # xBEN's encoder has no bins
        ("", "rsvqa-lr", None),
    ],
)
def test_rsvqa_answer_encoding(text, variant, expected):
    assert rsvqa_encoding(text, variant) == expected


def test_rsvqa_unknown_variant():
    with pytest.raises(ValueError, match="unknown RSVQA variant 'rsvqa-mr'"):
        rsvqa_encoding("yes", "rsvqa-mr")


@pytest.mark.parametrize(
    "answer, text, correct",
    [
        (Answer("vocab", "rural", ("rural", "urban")), "This is not a rural area.", False),
        (Answer("vocab", "rural", ("rural", "urban")), "It is a rural area.", True),
        (Answer("vocab", "urban", ("rural", "urban")), "A non-urban area", False),
        (Answer("vocab", "urban", ("rural", "urban")), "It isn't rural, it's urban", False),  # two words: ambiguous
        (Answer("yesno", "yes"), "not yes", False),
        (Answer("yesno", "yes"), "I don't think so, yes", True),  # the negation is in the other clause
        (Answer("yesno", "no"), "There are no roads", True),  # "no" is the answer word itself
        (Answer("yesno", "yes"), "Yes, but not many", True),
        (Answer("length", (0.103,)), "-0.103 m", False),
        (Answer("length", (0.103,)), "0.103 m", True),
        (Answer("length", (0.5,)), "The GSD is not 0.5 m", False),
        (Answer("count", 3), "-3", False),
        (Answer("count", 3), "There are not 3 cars", False),
        (Answer("count", 3), "There are 3 cars", True),
        (Answer("count_bin", "0"), "-5", False),  # a negative count is no answer, not bin "0"
        (Answer("area_bin", "11-100"), "between 10m2 and 100m2", True),  # "-" inside a range is no sign
    ],
)
def test_judge_does_not_credit_negated_or_sign_flipped_answers(answer, text, correct):
    assert judge(answer, text).correct is correct


def test_signs_and_ranges_in_numbers():
    assert extract_number("-12") == ("strict", -12.0)
    assert extract_number("−12") == ("strict", -12.0)  # U+2212 minus
    assert extract_number("1-10") == ("unparseable", None)  # two numbers, no sign
    assert extract_bin("1-10") == ("strict", "1-10")
    assert extract_lengths("0.4-0.6 m") == ("fallback", (0.6,))  # the "-" of a range is no sign
    assert extract_lengths("-2.56 km × 2.56 km") == ("strict", (-2560.0, 2560.0))
