"""Teacher QA: a Hugging Face image-text model asked for QA pairs at one tier, told the image's GSD.

Any model that `AutoModelForImageTextToText` loads can teach (the paper used Qwen3-VL-32B). The prompt
states the GSD and ground footprint and asks only for what is visible at that resolution, one call per
visible tier (`tiers.visible_tiers`). Replies must be a JSON list of {"question", "answer"}; anything
else is rejected and counted (reason "malformed teacher output" in rejects.jsonl), never guessed at.
Greedy decoding keeps the corpus deterministic. `trust_remote_code` stays off unless asked for.

Processors: `AutoProcessor` is used when it can be built. Without torchvision, transformers cannot
build Qwen-VL processors (their video half needs it), so for Qwen-VL-family checkpoints the teacher
falls back to an image-only processor assembled from the checkpoint's tokenizer and image processor.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..records import QA
from .templates import format_length
from .tiers import visible_tiers

TIER_HINTS = {
    "object": "individual objects a few metres across (vehicles, buildings, trees, ships): presence, counts, "
    "colours and positions",
    "structure": "layouts and extended features (roads, rivers, water bodies, fields, bridges, courts) and how "
    "they are arranged",
    "semantic": "the scene as a whole (land cover, land use, type of place, rural or urban)",
}
PROMPT = (
    "This is a remote-sensing image with a ground sampling distance of {gsd} per pixel; it covers {footprint} "
    "of ground. Write {n} question-answer pairs about {hint}. Ask only about what can be seen at this "
    'resolution. Reply with a JSON list only, like [{{"question": "...", "answer": "..."}}].'
)
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 300


@dataclass(frozen=True)
class TeacherConfig:
    model: str  # a Hugging Face model id or a local checkpoint folder
    device: str = "cpu"
    dtype: str = "auto"  # "auto", "float32", "bfloat16" or "float16"
    max_new_tokens: int = 256
    qa_per_tier: int = 3
    trust_remote_code: bool = False


def teacher_prompt(gsd_m: float, width: int, height: int, tier: str, n: int) -> str:
    footprint = f"{format_length(width * gsd_m)} × {format_length(height * gsd_m)}"
    return PROMPT.format(gsd=format_length(gsd_m), footprint=footprint, n=n, hint=TIER_HINTS[tier])


def _first_json_list(text: str):
    """The first JSON list in `text` (models wrap JSON in prose or code fences, or keep talking after it)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\[", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            return value
    return None


def parse_teacher_output(text: str, tier: str, limit: int) -> tuple[list[QA], list[str]]:
    """Validated QA (at most `limit`) and one failure message per rejected reply or pair."""
    entries = _first_json_list(text)
    if entries is None:
        return [], [f"no JSON list in reply: {text[:120]!r}"]
    qa, failures, seen = [], [], set()
    for entry in entries:
        if not isinstance(entry, dict):
            failures.append(f"not an object: {repr(entry)[:120]}")
            continue
        question, answer = entry.get("question"), entry.get("answer")
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(question, str) or not isinstance(answer, str):
            failures.append(f"question and answer must be strings: {repr(entry)[:120]}")
            continue
        question, answer = question.strip(), answer.strip()
        if not 3 <= len(question) <= MAX_QUESTION_CHARS or not 1 <= len(answer) <= MAX_ANSWER_CHARS:
            failures.append(f"empty or overlong question/answer: {repr(entry)[:120]}")
        elif question.lower() == answer.lower():
            failures.append(f"answer repeats the question: {question[:80]!r}")
        elif question.lower() in seen:
            failures.append(f"duplicate question: {question[:80]!r}")
        elif len(qa) < limit:
            seen.add(question.lower())
            qa.append(QA(question, answer, tier, "teacher", "teacher"))
    return qa, failures


class QwenImageProcessor:
    """Image-only stand-in for a Qwen-VL processor: chat template, image tokens, pixel values.

    Does what Qwen2/2.5/3-VL processors do for images: each `<|image_pad|>` becomes
    grid_t·grid_h·grid_w / merge² tokens, and `mm_token_type_ids` marks them for multimodal RoPE.
    """

    image_token = "<|image_pad|>"

    def __init__(self, tokenizer, image_processor):
        self.tokenizer, self.image_processor = tokenizer, image_processor
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)

    @classmethod
    def from_pretrained(cls, path: str, **kwargs):
        from transformers import AutoImageProcessor, AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(path, **kwargs), AutoImageProcessor.from_pretrained(path, **kwargs))

    def apply_chat_template(self, messages, **kwargs):
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def __call__(self, text: list[str], images: list, return_tensors: str = "pt"):
        import torch

        pixels = self.image_processor(images=images, return_tensors=return_tensors)
        merge = self.image_processor.merge_size**2
        grids = iter(pixels["image_grid_thw"])
        expanded = []
        for line in text:
            parts = line.split(self.image_token)
            out = parts[0]
            for part in parts[1:]:
                out += "<|placeholder|>" * int(next(grids).prod() // merge) + part
            expanded.append(out.replace("<|placeholder|>", self.image_token))
        tokens = self.tokenizer(expanded, return_tensors=return_tensors, padding=True)
        tokens["mm_token_type_ids"] = (tokens["input_ids"] == self.image_token_id).to(torch.int64)
        return {**tokens, **pixels}

    def batch_decode(self, ids, **kwargs):
        return self.tokenizer.batch_decode(ids, **kwargs)


def load_processor(path: str, trust_remote_code: bool = False):
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        if hasattr(processor, "image_processor") and hasattr(processor, "tokenizer"):
            return processor
        problem = f"AutoProcessor gave a {type(processor).__name__}, not an image-text processor"
    except Exception as err:  # transformers raises many kinds when a sub-processor cannot be built
        problem = f"{type(err).__name__}: {err}"
    try:
        return QwenImageProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise RuntimeError(f"cannot build a processor for {path}: {problem}; image-only fallback: {err}") from err


class Teacher:
    """A loaded teacher model; `generate_qa(image, gsd_m)` returns (QA, failure messages)."""

    def __init__(self, config: TeacherConfig):
        import torch
        from transformers import AutoModelForImageTextToText

        self.config = config
        self.processor = load_processor(config.model, config.trust_remote_code)
        dtype = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
        self.model = (
            AutoModelForImageTextToText.from_pretrained(
                config.model, dtype=dtype, trust_remote_code=config.trust_remote_code
            )
            .to(config.device)
            .eval()
        )

    def ask(self, image, prompt: str) -> str:
        import torch

        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], images=[image], return_tensors="pt")
        inputs = {k: v.to(self.config.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False)
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]

    def generate_qa(self, image, gsd_m: float) -> tuple[list[QA], list[str]]:
        qa, failures = [], []
        width, height = image.size
        for tier in visible_tiers(gsd_m):
            prompt = teacher_prompt(gsd_m, width, height, tier, self.config.qa_per_tier)
            tier_qa, tier_failures = parse_teacher_output(
                self.ask(image.convert("RGB"), prompt), tier, self.config.qa_per_tier
            )
            qa += tier_qa
            failures += [f"{tier}: {f}" for f in tier_failures]
        return qa, failures
