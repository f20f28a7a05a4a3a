"""A client for ScaleEarth served by an engine with multi-LoRA support (vLLM's OpenAI-compatible server).

``scaleearth export`` writes one standard LoRA adapter per grid GSD and an index of the log10 range each
serves. The engine loads them all (``vllm serve BASE --enable-lora --lora-modules gsd_1m=served/lora/gsd_1m
...``); per request, :class:`ScaleRouter` picks the adapter the way the gate would pick its input:

1. metadata GSD given: the effective GSD of the pixels the model will see (the processor's resize,
   ``scale.effective_log10_gsd``), then the nearest grid GSD in log10 (``cshlora.adapter_for_gsd``);
2. no GSD: SSE-U, run once on the image here (:func:`sseu_estimator`), through the deployment policy
   (the estimate when its 95 % interval is under one decade, else the neutral 10 m default).

:func:`chat_request` builds the OpenAI chat payload (the image inline as a PNG data URL, the question worded
as in training, ``model`` = the adapter's name) and :func:`send` posts it with the standard library.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import cshlora

from . import scale


@dataclass(frozen=True)
class AdapterChoice:
    name: str  # the served adapter (the request's "model")
    gate_gsd_m: float  # the GSD it stands for the gate input of (effective, model pixels)
    origin: str  # metadata | estimate | default


class ScaleRouter:
    """Picks the exported adapter for an image: see the module docstring.

    ``index``: the export index (path or dict); ``processor``: the served model's processor (for the resize
    that makes a metadata GSD effective; None: the image is taken as sent unresized); ``estimator``: image ->
    ``sseu.SSEUPrediction`` of the effective log10 GSD, or None (no SSE-U: the default for images without a GSD).
    """

    def __init__(self, index, processor=None, estimator: Callable | None = None):
        self.index = cshlora.read_export_index(index) if not isinstance(index, dict) else index
        self.processor = processor
        self.estimator = estimator

    def _input_width(self, image) -> int:
        if self.processor is None:
            return image.width
        grid = self.processor.image_processor(images=[image], return_tensors="pt")["image_grid_thw"]
        return scale.input_widths(self.processor, grid)[0]

    def choose(self, image, gsd_m: float | None = None) -> AdapterChoice:
        import torch

        from sseu import resolve_scale

        if gsd_m is not None:
            from geoscale_vqa.gsd import validate_gsd

            gsd_m = validate_gsd(gsd_m, what="gsd_m")
            s = scale.effective_log10_gsd(gsd_m, [image.width], [self._input_width(image)])
            decision = resolve_scale(metadata_log10_gsd=torch.tensor([s], dtype=torch.float64))
        else:
            prediction = self.estimator(image) if self.estimator is not None else None
            decision = resolve_scale(prediction=prediction, batch_size=1)
        gate = 10.0 ** float(decision.log10_gsd[0])
        return AdapterChoice(cshlora.adapter_for_gsd(self.index, gate), gate, decision.branch[0])


def sseu_estimator(model: str, adapter, *, device: str = "cpu") -> Callable:
    """image -> SSE-U's prediction, with the served model's vision tower and the run's head (loaded once).

    The image goes through the same resize as on the server, so the estimate is of the effective GSD.
    """
    import torch

    from sseu import SSEUPrediction

    from .inference import Item, answer_batch, load_eval_model

    em = load_eval_model(model, adapter, device=device)
    if not em.has_head:
        raise ValueError(f"{adapter} has no SSE-U head: images without a GSD would all get the default")

    def estimate(image):
        item = Item(prompt="", images=[image], source_widths=[image.width])
        (answer,) = answer_batch(em, [item], scale.GateSource("predicted"), max_new_tokens=1)
        return SSEUPrediction(torch.tensor([answer.sseu_mean]), torch.tensor([answer.sseu_var]))

    return estimate


def chat_request(adapter: str, image, question: str, *, max_tokens: int = 64) -> dict:
    """OpenAI chat-completions payload: the PNG inline, the question with the training-time instruction."""
    from geoscale_vqa.benchmarks.prompts import short_answer_prompt

    png = io.BytesIO()
    image.convert("RGB").save(png, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
    content = [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "text", "text": short_answer_prompt(question)},
    ]
    return {"model": adapter, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
            "temperature": 0.0}  # fmt: skip


def send(base_url: str, payload: dict, *, api_key: str | None = None, timeout: float = 120.0) -> str:
    """POST ``payload`` to ``{base_url}/chat/completions``; the answer text."""
    request = urllib.request.Request(
        base_url.rstrip("/") + "/chat/completions",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the user's own server)
        body = json.loads(response.read())
    return body["choices"][0]["message"]["content"]


def ask(router: ScaleRouter, base_url: str, image, question: str, gsd_m: float | None = None, *,
        max_tokens: int = 64, **send_kwargs) -> tuple[str, AdapterChoice]:  # fmt: skip
    """Pick the adapter for ``image`` and ask ``question`` through the server: (answer, choice)."""
    choice = router.choose(image, gsd_m)
    payload = chat_request(choice.name, image, question, max_tokens=max_tokens)
    return send(base_url, payload, **send_kwargs), choice
