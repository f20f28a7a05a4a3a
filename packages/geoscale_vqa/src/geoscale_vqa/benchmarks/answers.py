"""Answer extraction and normalisation: letter sets, yes/no, numbers, RSVQA count and area bins, lengths.

Every extractor returns `(status, value)` with status one of

- "strict": the whole answer is in the expected form ("B", "b", "B, D", "A C", "(A) text", "yes", "12"),
- "fallback": found by the documented fallback rules inside a longer answer,
- "invalid": a well-formed letter answer naming a letter that is not an option,
- "unparseable": nothing usable ("I'm not sure", ""), or an ambiguous answer,

so results can count unparseable answers instead of folding them silently into "wrong".

**Letter sets, fallback rules** (only when the strict parse fails), first hit wins:

1. An answer marker ("answer", "option", "choice", optionally followed by "is/are/:") followed by a
   letter list: "The answer is (B).", "Answer: C", "The correct options are A and C".
2. A letter list at the very start: "B because A is wrong" gives {B}. The peers' loose regex
   (VLMEvalKit, lmms-eval) collects every capital letter and returns {A, B} here.
3. Exactly one distinct parenthesised letter anywhere: "I would pick (C) here." gives {C}.

A letter list is letters (bare, or in parentheses) joined by `,` `;` `/` `&` or "and". A bare letter
only counts when a word boundary follows it. Lowercase bare letters count in the fallback only before
punctuation or the end ("the answer is b."), never before a word, so "the answer is a forest" is not
{A}; likewise a leading capital "A"/"I" followed by an ordinary word is read as English ("A forest is
visible"), except before a connective (because, since, is, as).

**Numbers**: digits (with thousands separators, a leading minus sign kept: "-0.103 m" is not
"0.103 m") or English number words ("twelve", "twenty-one", "one hundred and five"). Strict: the
whole answer is one number (optionally with a unit where the kind allows one). Fallback: exactly one
distinct number in the answer; two different numbers ("3, not 4") are ambiguous, hence unparseable,
never a guess.

**Negation** (`negation.py`): a fallback read is dropped (unparseable) when the value it found is
negated in its clause: "This is not a rural area." is not "rural", "not yes" is not "yes", "a
non-urban area" is not "urban", "it is not 3" is not 3. Negative counts and areas are unparseable.

**RSVQA bins** (Lobry et al., RSVQA, TGRS 2020): LR count answers are scored in five bins, 0, 1-10,
11-100, 101-1000, >1000, and HR area answers (m²) in the same bins. A non-zero value below 1 falls in
1-10. Bin phrases ("between 11 and 100", "more than 1000", "between 10m2 and 100m2") map to the bin of
their upper edge (or just above a "more than" edge), so already-binned ground truth is read too.
"""

from __future__ import annotations

import math
import re
import string

from .negation import lowered, negated

LETTERS = string.ascii_uppercase

# --- letter sets ---------------------------------------------------------------------------------

_LABELLED_OPTION = re.compile(r"^\s*(?:\(([A-Za-z])\)|([A-Za-z])[.:)])\s*(.*)$", re.S)
_LIST_SPLIT = re.compile(r"\s*(?:[,;/&+]|\band\b)\s*|\s+")
_LIST_TOKEN = re.compile(r"\(?([A-Za-z])\)?[.:)]?")
_MARKER = re.compile(
    r"\b(?:answers?|options?|choices?)\b\s*(?:(?:is|are|would be|should be|will be)\b)?\s*[:=\-]?\s*", re.I
)
_TOKEN = re.compile(r"\s*(?:\(([A-Za-z])\)|([A-Za-z])(?=$|[\s,.;:!?)/&]))")
_SEP = re.compile(r"\s*(?:[,;/&+]|\band\b)?")
_CONNECTIVES = {"because", "since", "is", "as", "and"}


def split_option(option: str) -> tuple[str | None, str]:
    """("A", "forest") from "(A) forest", "A. forest", "A) forest" or "A: forest"; (None, text) if unlabelled."""
    match = _LABELLED_OPTION.match(option)
    if match is None:
        return None, option.strip()
    return (match.group(1) or match.group(2)).upper(), match.group(3).strip()


def _strict_letters(text: str) -> list[str] | None:
    s = text.strip().rstrip(".").strip()
    if not s:
        return None
    if re.fullmatch(r"[A-Z]{2,}", s) and len(set(s)) == len(s):
        return list(s)  # "AC": how lmms-eval and some dumps store multi-answer ground truth
    tokens = [t for t in _LIST_SPLIT.split(s) if t]
    matches = [_LIST_TOKEN.fullmatch(t) for t in tokens]
    if tokens and all(matches):
        return [m.group(1).upper() for m in matches]
    if re.match(r"\(([A-Za-z])\)", s):  # "(A) text", "(A) forest, (C) water"
        return [m.upper() for m in re.findall(r"(?:^|[,;\n]\s*|\band\s+)\(([A-Za-z])\)", s)]
    match = re.match(r"([A-Za-z])[.:)]\s+\S", s)  # "A. forest"
    return [match.group(1).upper()] if match else None


def _letter_list(text: str, pos: int = 0) -> list[str]:
    """The letter list starting at `pos` (maybe empty), under the fallback's word-boundary rules."""
    letters = []
    while True:
        match = _TOKEN.match(text, pos)
        if match is None:
            break
        if match.group(2) is not None:
            letter, rest = match.group(2), text[match.end() :]
            next_word = re.match(r"\s+([A-Za-z]+)", rest)
            if letter.islower() and next_word:
                break  # "a forest": an article, not option a
            if letter in "AI" and next_word and next_word.group(1).lower() not in _CONNECTIVES:
                break  # "A forest is visible", "I think": English, not a letter
        letters.append((match.group(1) or match.group(2)).upper())
        pos = _SEP.match(text, match.end()).end()
    return letters


def _fallback_letters(text: str) -> list[str] | None:
    for marker in _MARKER.finditer(text):
        letters = _letter_list(text, marker.end())
        if letters:
            return letters
    letters = _letter_list(text.strip())
    if letters:
        return letters
    parenthesised = set(re.findall(r"\(([A-Za-z])\)", text))
    return [parenthesised.pop().upper()] if len(parenthesised) == 1 else None


def extract_letters(text: str | None, valid: str | tuple[str, ...]) -> tuple[str, frozenset[str] | None]:
    """(status, letter set) of a model's answer to a multiple-choice question with option letters `valid`."""
    if text is None:
        return "unparseable", None
    valid = set(valid)
    for status, letters in (("strict", _strict_letters(text)), ("fallback", None)):
        if status == "fallback":
            letters = _fallback_letters(text)
        if letters:
            found = frozenset(letters)
            return ("invalid", found) if not found <= valid else (status, found)
    return "unparseable", None


def parse_letter_set(text: str, valid: str | tuple[str, ...], *, where: str = "answer") -> frozenset[str]:
    """A ground truth letter set ("B", "A,C", "A C", "AC", "(A) text"); ValueError if it is anything else."""
    letters = _strict_letters(str(text))
    if not letters:
        raise ValueError(f"{where}: cannot read a letter set from {text!r}")
    found = frozenset(letters)
    if not found <= set(valid):
        raise ValueError(f"{where}: answer {text!r} names letters outside the options {''.join(sorted(valid))}")
    return found


def format_letters(letters) -> str:
    return ",".join(sorted(letters))


# --- words: yes/no, vocabularies, free text ----------------------------------------------------------

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalise_text(text: str) -> str:
    """Lowercase, punctuation to spaces (apart from inner . , in numbers), articles dropped, spaces collapsed."""
    s = text.lower().replace("²", "2")
    s = re.sub(r"(?<!\d)[.,](?!\d)|[!?;:\"'`()\[\]{}]", " ", s)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def extract_word(text: str | None, vocabulary: tuple[str, ...]) -> tuple[str, str | None]:
    """One word of a closed vocabulary: strict if the answer is that word, fallback if exactly one appears
    and it is not negated ("This is not a rural area." is unparseable, not "rural")."""
    if not text:
        return "unparseable", None
    words = normalise_text(text)
    if words in vocabulary:
        return "strict", words
    low = lowered(text)
    places = {v: [m.start() for m in re.finditer(rf"\b{re.escape(v)}\b", low)] for v in vocabulary}
    found = [v for v, starts in places.items() if starts]
    if len(found) != 1 or any(negated(low, start) for start in places[found[0]]):
        return "unparseable", None
    return "fallback", found[0]


def extract_yes_no(text: str | None) -> tuple[str, str | None]:
    return extract_word(text, ("yes", "no"))


def normalise_yes_no(text: str) -> str | None:
    status, value = extract_yes_no(text)
    return value if status == "strict" else None


# --- numbers, bins, areas, lengths -------------------------------------------------------------------

_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()  # noqa: E501
_TENS = dict(zip("twenty thirty forty fifty sixty seventy eighty ninety".split(), range(20, 100, 10)))
_WORD_VALUES = {**{w: i for i, w in enumerate(_UNITS)}, **_TENS}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORD = "|".join(sorted([*_WORD_VALUES, *_SCALES, "none"], key=len, reverse=True))
# A minus sign counts only where a number starts ("-3", "(-3"), never between two numbers ("1-10").
_NUMBER = re.compile(
    rf"(?<![\w.])([-−]?(?:\d{{1,3}}(?:,\d{{3}})+(?!\d)|\d+(?:\.\d+)?))|\b((?:{_NUMBER_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_NUMBER_WORD}))*)\b",
    re.I,
)
_BIN_EDGES = (0, 10, 100, 1000)
BINS = ("0", "1-10", "11-100", "101-1000", ">1000")
_AREA_UNIT = r"(?:m2|m\^2|sq\.?\s*m|square\s+met(?:er|re)s?|sqm)"
_BETWEEN = re.compile(rf"between\s+([\d,.]+)\s*{_AREA_UNIT}?\s+and\s+([\d,.]+)\s*{_AREA_UNIT}?", re.I)
_MORE_THAN = re.compile(rf"(?:more|greater)\s+than\s+([\d,.]+)\s*{_AREA_UNIT}?|over\s+([\d,.]+)", re.I)
_BIN_LABEL = re.compile(r"^\s*(0|1\s*[-–]\s*10|11\s*[-–]\s*100|101\s*[-–]\s*1000|>\s*1000)\s*$")


def _words_to_number(words: str) -> int:
    total, current = 0, 0
    for word in re.split(r"[\s-]+", words.lower()):
        if word in ("and", ""):
            continue
        if word == "none":
            current += 0
        elif word in _SCALES:
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0
        else:
            current += _WORD_VALUES[word]
    return total + current


def _number_value(match: re.Match) -> float:
    digits, words = match.groups()
    return float(digits.replace(",", "").replace("−", "-")) if digits else float(_words_to_number(words))


def find_numbers(text: str) -> list[float]:
    """Every number in the text, in order, digits and number words alike."""
    return [_number_value(match) for match in _NUMBER.finditer(text)]


def bin_label(value: float) -> str:
    """The RSVQA bin of a count or an area: 0, 1-10, 11-100, 101-1000, >1000."""
    if value <= 0:
        return BINS[0]
    for label, upper in zip(BINS[1:], _BIN_EDGES[1:]):
        if value <= upper:
            return label
    return BINS[-1]


def _bin_phrase(text: str) -> str | None:
    if match := _BIN_LABEL.match(text):
        return re.sub(r"\s|–", lambda m: "" if m.group().isspace() else "-", match.group(1))
    if match := _BETWEEN.search(text):
        return bin_label(float(match.group(2).replace(",", "").rstrip(".")))
    if match := _MORE_THAN.search(text):
        return bin_label(float((match.group(1) or match.group(2)).replace(",", "").rstrip(".")) + 1)
    return None


def _strip_unit(text: str, unit: str | None) -> str:
    s = normalise_text(text)
    return re.sub(rf"\s*{unit}$", "", s) if unit else s


def extract_number(text: str | None, unit: str | None = None) -> tuple[str, float | None]:
    """One number: strict if the answer is just the number (and `unit`, a regex), fallback if it is the only one."""
    if not text or not text.strip():
        return "unparseable", None
    bare = _strip_unit(text, unit)
    if _NUMBER.fullmatch(bare):
        return "strict", find_numbers(bare)[0]
    # the lookbehind in _NUMBER keeps the "2" of "m2" out of the numbers found
    low = lowered(text)
    found = [(_number_value(m), m.start()) for m in _NUMBER.finditer(low)]
    if len({value for value, _ in found}) != 1 or any(negated(low, start) for _, start in found):
        return "unparseable", None
    return "fallback", found[0][0]


def extract_bin(text: str | None, *, area: bool = False) -> tuple[str, str | None]:
    """The RSVQA bin of a count (or, with `area`, of an area in m²) answer, or of a bin phrase."""
    if not text or not text.strip():
        return "unparseable", None
    phrase = _bin_phrase(text)
    if phrase is not None:
        whole = text.strip().rstrip(".").strip()
        strict = any(p.fullmatch(whole) for p in (_BIN_LABEL, _BETWEEN, _MORE_THAN))
        return ("strict" if strict else "fallback"), phrase
    status, value = extract_number(text, _AREA_UNIT if area else None)
    if value is None or value < 0:  # a negative count or area is no answer
        return "unparseable", None
    return status, bin_label(value)


def parse_area_m2(text: str) -> float | None:
    """1234.0 from "1234m2", "1,234 m²", "1234 square meters"; None if not an area."""
    status, value = extract_number(text, _AREA_UNIT)
    return value if status == "strict" else None


_LENGTH = re.compile(r"((?:(?<![\w.])[-−])?\d+(?:\.\d+)?)\s*(km|cm|m)\b", re.I)
_TO_METRES = {"km": 1000.0, "m": 1.0, "cm": 0.01}


def find_lengths(text: str) -> list[float]:
    """Ground lengths in metres, in order: "2.56 km × 2.56 km" gives [2560.0, 2560.0]; "-0.1 m" gives [-0.1]."""
    return [float(v.replace("−", "-")) * _TO_METRES[u.lower()] for v, u in _LENGTH.findall(text.replace(",", ""))]


def extract_lengths(text: str | None) -> tuple[str, tuple[float, ...] | None]:
    if not text or not (lengths := find_lengths(text)):
        return "unparseable", None
    rest = _LENGTH.sub("", text.replace(",", ""))
    strict = re.fullmatch(r"[\s×x*by.]*", rest, re.I) is not None  # only separators besides the lengths
    if not strict:
        low = lowered(text.replace(",", ""))
        if any(negated(low, m.start()) for m in _LENGTH.finditer(low)):
            return "unparseable", None
    return ("strict" if strict else "fallback"), tuple(lengths)


def lengths_match(found: tuple[float, ...], truth: tuple[float, ...], rtol: float) -> bool:
    return len(found) == len(truth) and all(math.isclose(f, t, rel_tol=rtol) for f, t in zip(found, truth))


def split_items(text: str) -> frozenset[str]:
    """{"mixed forest", "pastures"} from "Mixed forest, Pastures" (also "and" / ";" separated)."""
    parts = re.split(r"\s*(?:[,;]|\band\b)\s*", text)
    return frozenset(p for p in (normalise_text(x) for x in parts) if p)
