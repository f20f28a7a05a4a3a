"""RSVQA's own answer normalisation (syvlo/RSVQA `VQA_model/VocabEncoder.py`, commit 3c445ff; RSVQAxBEN
`Model.ipynb`, commit 7e8e922), applied to the ground truth and to a model's text alike.

The reference models are classifiers over encoded answers; an answer is right when its encoding equals
the ground truth's. The encoding, rule for rule:

1. Drop one final "?" or "." (only the last character).
2. Split on whitespace; lowercase each token.
3. LR only (`range_numbers=True` in `train.py`/`computeStats.py`): a token of digits becomes its bin,
   "between 0 and 10" (1-10), "between 10 and 100" (11-100), "between 100 and 1000" (101-1000),
   "more than 1000"; "0" stays "0".
4. LR and HR: a token ending in "m2" whose rest is an integer becomes "between 0m2 and 10m2",
   "between 10m2 and 100m2", "between 100m2 and 1000m2" or "more than 1000m2" by the same edges;
   "0m2" stays "0m2".
5. RSVQAxBEN: steps 1 and 2 only.

Where the reference code would raise (an empty answer; "m2" with no integer before it; a digit token
`int` cannot read, such as "²"), this module leaves the token as it is (or, for an empty answer, gives
no encoding): the prediction is then wrong, where the reference had no number at all.
"""

from __future__ import annotations

VARIANT_RULES = {"rsvqa-lr": True, "rsvqa-hr": False, "rsvqa-xben": None}  # range_numbers; None: xBEN


def _bin(num: int, unit: str) -> str | None:
    if 0 < num <= 10:
        return f"between 0{unit} and 10{unit}"
    if 10 < num <= 100:
        return f"between 10{unit} and 100{unit}"
    if 100 < num <= 1000:
        return f"between 100{unit} and 1000{unit}"
    if num > 1000:
        return f"more than 1000{unit}"
    return None


def _token(token: str, range_numbers: bool) -> str:
    token = token.lower()
    if range_numbers and token.isdigit():
        try:
            token = _bin(int(token), "") or token
        except ValueError:  # "²".isdigit() is True but int() cannot read it
            pass
    if token[-2:] == "m2":
        try:
            token = _bin(int(token[:-2]), "m2") or token
        except ValueError:
            pass
    return token


def rsvqa_encoding(text: str | None, variant: str) -> tuple[str, ...] | None:
    """The normalised token sequence of an answer, or None for an answer the reference cannot encode."""
    if variant not in VARIANT_RULES:
        raise ValueError(f"unknown RSVQA variant {variant!r}; expected one of {', '.join(VARIANT_RULES)}")
    if not text:
        return None
    if text[-1] in "?.":
        text = text[:-1]
    range_numbers = VARIANT_RULES[variant]
    if range_numbers is None:
        return tuple(token.lower() for token in text.split())
    return tuple(_token(token, range_numbers) for token in text.split())
