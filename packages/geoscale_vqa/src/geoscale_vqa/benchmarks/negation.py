"""Negation and sign checks, so a fallback read never credits an answer that denies the ground truth.

"This is not a rural area." names "rural" but denies it; "not yes" names "yes"; "a non-urban area"
names "urban". The fallback readers in `answers.py` find a value inside a longer answer; they ask
`negated(text, start)` about every place the value was found and give up (unparseable) if any of
them is negated. Negation only ever takes credit away: it never picks one value over another.

A place is negated when a negation word (not, n't, no, never, neither, nor, without, cannot) stands
before it in the same clause, or when "non" is glued to it ("non-urban", "non urban"). Clauses end
at ; ! ? , . : (a comma or full stop only before a space or the end, so "1,234" and "0.5" stay
whole) and before "but", "however" and "instead".
"""

from __future__ import annotations

import re

NEGATION_WORDS = frozenset({"not", "no", "never", "neither", "nor", "without", "cannot"})
_CLAUSE_END = re.compile(r"[;!?]|[,.:](?=\s|$)|\b(?:but|however|instead)\b")
_WORD = re.compile(r"[a-z]+")


def lowered(text: str) -> str:
    """Lowercase with "n't" spelled "not" (also with a typographic apostrophe), same length per clause."""
    return re.sub(r"n[’']t\b", " not", text.lower())


def negated(text: str, start: int) -> bool:
    """Is the value found at `start` of `text` (a `lowered` string) negated within its clause?"""
    clause_start = 0
    for match in _CLAUSE_END.finditer(text, 0, start):
        clause_start = match.end()
    before = text[clause_start:start]
    if re.search(r"\bnon[\s-]*$", before):
        return True
    return any(word in NEGATION_WORDS for word in _WORD.findall(before))
