"""The official multiple-choice letter extraction of XLRS-Bench and OmniEarth-Bench, rule for rule.

Written from reading the benchmarks' own scorers (no code copied), so `--parser official` gives their
numbers on any predictions:

- XLRS: lmms-eval `lmms_eval/tasks/xlrs/mcq_utils.py`, `extract_characters_regex` (commit e316f862,
  "Add macro matric", unchanged up to 75571cfe); VLMEvalKit's `XLRSBench.extract_characters_regex`
  (vlmeval/dataset/image_mcq.py at e8e78f05) applies the same rules.
- OmniEarth: OmniEarth-Bench `evaluation/task_config/mcq_utils.py`, `extract_characters_regex`
  (nanocm/OmniEarth-Bench at 2fe932c).

The rules, in order:

1. Strip surrounding whitespace; delete every occurrence of each answer prefix, in list order and
   case-sensitively ("The answer is" before "The answer"). XLRS's list has two entries glued together
   by missing commas ("The best option isThe correct option is", "Best answer:Best option:"), so
   "The best option is B" keeps its words there; OmniEarth's list has them as four separate prefixes.
2. No capital A-E left anywhere: no answer (""). Only A-E count, even where a question has options F
   or G (OmniEarth), so "F" is never read.
3. Letters a-e in parentheses, "(b)", if there are any; otherwise every letter a-e anywhere in the
   text, inside words too (the reference regex makes its boundary groups optional, so it matches each
   such letter): "Answer: C" gives {A, C, E}, "I think it's A" gives {A}, "No, B" gives {B}.
4. The letters, upper-cased, as a set. A question is right when that set equals the set of characters
   of the ground truth string as stored (`set(answer)`): "AC" is {A, C}; "A,C" is {A, ",", C}, which
   no extraction can equal.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .answers import format_letters
from .judge import MISSING, Outcome

XLRS_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
)
OMNIEARTH_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
)
_CAPITAL = re.compile("[ABCDE]")
_PARENTHESISED = re.compile(r"\(([a-eA-E])\)")
_ANY_LETTER = re.compile("[a-eA-E]")


def extract_official_letters(text, prefixes: tuple[str, ...]) -> frozenset[str]:
    """The letter set the reference `extract_characters_regex` returns (empty for its "")."""
    s = text.strip() if isinstance(text, str) else ""
    for prefix in prefixes:
        s = s.replace(prefix, "")
    if not _CAPITAL.search(s):
        return frozenset()
    letters = _PARENTHESISED.findall(s) or _ANY_LETTER.findall(s)
    return frozenset(letter.upper() for letter in letters)


def official_choice_correct(letters: frozenset[str], answer_as_stored: str) -> bool:
    """The reference comparison: `set(extracted) == set(answer)`, the answer's characters as stored."""
    return set(letters) == set(answer_as_stored)


def letter_judge(prefixes: tuple[str, ...]) -> Callable:
    """The official judgement of a multiple-choice benchmark: its letter extraction (with its answer
    ``prefixes``), then ``set(letters) == set(answer as stored)``. Returns ``judge(question, text)``."""

    def judge(question, text: str | None) -> Outcome:
        if text is None:
            return MISSING
        letters = extract_official_letters(text, prefixes)
        correct = official_choice_correct(letters, question.answer_text)
        return Outcome("official" if letters else "unparseable", format_letters(letters) or None, correct)

    return judge
