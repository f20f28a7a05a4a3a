"""Prompts in each benchmark's own format.

Multiple choice (XLRS-Bench and OmniEarth-Bench both use the MME-RealWorld prompt; see the XLRS-Bench
README and the lmms-eval tasks `xlrs/mcq_utils.py` and OmniEarth-Bench `task_config/mcq_utils.py`):

    <question>
    The choices are listed below:
    (A) ...
    (B) ...

    Select the best answer for the multiple-choice question based on the image. Only respond with the
    letter corresponding to the correct answer (A, B, C, D).
    The answer is:

Multi-answer questions use the "best answer(s) ... separated by spaces" instruction. Two deliberate
differences from the reference code: the question and the choices are separated by a newline (the
lmms-eval code glues them together), and the letters in the instruction are the question's own option
letters (XLRS hard-codes "A, B, C, D", which is the same for its four-option questions).

Open questions (RSVQA, GeoScale) use the short-answer instruction of LLaVA-style RS models (GeoChat and
others evaluate RSVQA this way): "<question>\nAnswer the question using a single word or phrase."
"""

from __future__ import annotations

SINGLE = (
    "Select the best answer for the multiple-choice question based on the image. "
    "Only respond with the letter corresponding to the correct answer ({letters})."
)
MULTI = (
    "Select the best answer(s) for the multiple-choice question based on the image. "
    "There may be more than one correct option. Only respond with the letter(s) corresponding to the "
    "correct answer(s) ({letters}), with multiple choices separated by spaces."
)
SHORT_ANSWER = "Answer the question using a single word or phrase."


def choice_prompt(question: str, options: list[str], letters: str, *, multi: bool, cue: str = "The answer is:") -> str:
    """`options` are rendered option lines ("(A) forest"); `letters` the option letters in order."""
    choices = "The choices are listed below:\n" + "\n".join(options) + "\n"
    instruction = (MULTI if multi else SINGLE).format(letters=", ".join(letters))
    return f"{question.rstrip()}\n{choices}\n{instruction}\n{cue}"


def short_answer_prompt(question: str) -> str:
    return f"{question.rstrip()}\n{SHORT_ANSWER}"


# Free-form instruction turns (LLaVA-style ``conversation`` QA) are asked verbatim; every other QA is a
# VQA pair and carries the short-answer instruction, in training as at test time (the LLaVA-1.5 convention).
FREE_FORM_TYPES = frozenset({"conversation"})


def qa_prompt(question: str, qa_type: str) -> str:
    """The user text for one corpus QA, the same in training conversations and in evaluation."""
    return question if qa_type in FREE_FORM_TYPES else short_answer_prompt(question)
