"""Answer extraction: strict letter sets, the documented fallback, yes/no, numbers, RSVQA bins, lengths."""

import pytest

from geoscale_vqa.benchmarks.answers import (
    bin_label,
    extract_bin,
    extract_lengths,
    extract_letters,
    extract_number,
    extract_yes_no,
    parse_area_m2,
    parse_letter_set,
    split_items,
    split_option,
)

ABCD = "ABCD"


@pytest.mark.parametrize(
    "text, status, letters",
    [
        ("B", "strict", "B"),
        ("b", "strict", "B"),
        ("B, D", "strict", "BD"),
        ("A C", "strict", "AC"),
        ("A,C", "strict", "AC"),
        ("AC", "strict", "AC"),
        ("(A) forest", "strict", "A"),
        ("(A) forest, (C) water", "strict", "AC"),
        ("C. green", "strict", "C"),
        ("B.", "strict", "B"),
        ("The answer is (B).", "fallback", "B"),
        ("Answer: C", "fallback", "C"),
        ("answer: b", "fallback", "B"),
        ("The correct options are A and C.", "fallback", "AC"),
        ("B because A is wrong", "fallback", "B"),  # the peers' loose regex reads {A, B}
        ("A because B is wrong", "fallback", "A"),
        ("I would pick (C) here.", "fallback", "C"),
        ("E", "invalid", "E"),
        ("The answer is F.", "invalid", "F"),
        ("I'm not sure", "unparseable", None),
        ("", "unparseable", None),
        ("   ", "unparseable", None),
        ("A forest is visible", "unparseable", None),  # the article, not option A
        ("the answer is a forest", "unparseable", None),
        ("Either (A) or (B)", "unparseable", None),  # two parenthesised letters, no marker: ambiguous
    ],
)
def test_extract_letters(text, status, letters):
    found_status, found = extract_letters(text, ABCD)
    assert found_status == status
    assert found == (frozenset(letters) if letters else None)


def test_missing_prediction_is_unparseable():
    assert extract_letters(None, ABCD) == ("unparseable", None)


@pytest.mark.parametrize("truth, letters", [("B", "B"), ("A,C", "AC"), ("A C", "AC"), ("AC", "AC"), ("(D) red", "D")])
def test_parse_letter_set_ground_truth(truth, letters):
    assert parse_letter_set(truth, ABCD) == frozenset(letters)


@pytest.mark.parametrize("truth", ["", "maybe", "E", "A,F"])
def test_parse_letter_set_rejects_bad_ground_truth(truth):
    with pytest.raises(ValueError, match="Q7"):
        parse_letter_set(truth, ABCD, where="Q7")


def test_split_option():
    assert split_option("(A) 2 planes") == ("A", "2 planes")
    assert split_option("B. oak") == ("B", "oak")
    assert split_option("A lake") == (None, "A lake")  # no label punctuation: unlabelled text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes", ("strict", "yes")),
        ("no.", ("strict", "no")),
        ("Yes, there is.", ("fallback", "yes")),
        ("There are no roads", ("fallback", "no")),
        ("yes and no", ("unparseable", None)),
        ("maybe", ("unparseable", None)),
        ("", ("unparseable", None)),
    ],
)
def test_extract_yes_no(text, expected):
    assert extract_yes_no(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12", ("strict", 12)),
        ("1,234", ("strict", 1234)),
        ("twelve", ("strict", 12)),
        ("twenty-one", ("strict", 21)),
        ("one hundred and five", ("strict", 105)),
        ("There are 3 buildings.", ("fallback", 3)),
        ("3, not 4", ("unparseable", None)),
        ("I'm not sure", ("unparseable", None)),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_bin_edges_follow_the_rsvqa_paper():
    assert [bin_label(v) for v in (0, 0.4, 1, 10, 11, 100, 101, 1000, 1001)] == [
        "0",
        "1-10",
        "1-10",
        "1-10",
        "11-100",
        "11-100",
        "101-1000",
        "101-1000",
        ">1000",
    ]


@pytest.mark.parametrize(
    "text, area, expected",
    [
        ("5", False, ("strict", "1-10")),
        ("between 11 and 100", False, ("strict", "11-100")),
        ("more than 1000", False, ("strict", ">1000")),
        ("I count about 250 of them", False, ("fallback", "101-1000")),
        ("1234m2", True, ("strict", ">1000")),
        ("0m2", True, ("strict", "0")),
        ("1,234 m²", True, ("strict", ">1000")),
        ("about 50 square meters", True, ("fallback", "11-100")),
        ("between 10m2 and 100m2", True, ("strict", "11-100")),
        ("", True, ("unparseable", None)),
    ],
)
def test_extract_bin(text, area, expected):
    assert extract_bin(text, area=area) == expected


def test_parse_area_m2():
    assert parse_area_m2("1234m2") == 1234
    assert parse_area_m2("56 m2") == 56
    assert parse_area_m2("no idea") is None


def test_lengths_and_items():
    assert extract_lengths("2.56 km × 2.56 km") == ("strict", (2560.0, 2560.0))
    assert extract_lengths("It is roughly 0.5 m per pixel") == ("fallback", (0.5,))
    assert extract_lengths("fine") == ("unparseable", None)
    assert split_items("Mixed forest, Pastures and water") == {"mixed forest", "pastures", "water"}
