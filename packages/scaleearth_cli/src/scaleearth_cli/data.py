"""From GeoScale-VQA shards to model batches: chat text, processor resize, effective GSD and labels.

The effective GSD is computed here, where the processor resizes (docs/design.md section 2), by the same
functions inference uses (``scaleearth_cli.scale``): the processor's ``image_grid_thw`` gives the width
the model sees, and ``scale.effective_log10_gsd`` turns the stored GSD into that of those pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from . import scale

IGNORE_INDEX = -100


def _with_gsd_text(messages: list[dict], gsd_m: float) -> list[dict]:
    """A copy of the conversation with the GSD sentence at the start of the first user text."""
    out = [dict(m) for m in messages]
    first = out[0]
    parts = list(first["content"])
    at = next((i for i, p in enumerate(parts) if p.get("type") == "text"), len(parts))
    if at < len(parts):
        parts[at] = {"type": "text", "text": scale.gsd_prompt(gsd_m) + parts[at]["text"]}
    else:
        parts.append({"type": "text", "text": scale.gsd_prompt(gsd_m)})
    first["content"] = parts
    return out


@dataclass
class Collator:
    """Turns a list of conversation-mode items into one padded training batch.

    ``gsd_in_prompt``: the gsd-token baseline — the effective GSD is written into the prompt, so the
    resize is computed first with the processor's own image processor.
    """

    processor: object
    max_length: int = 2048
    gsd_in_prompt: bool = False

    def __post_init__(self) -> None:
        tok = self.processor.tokenizer
        tok.padding_side = "right"
        self.patch_size = int(self.processor.image_processor.patch_size)
        self.image_token_id = tok.convert_tokens_to_ids(self.processor.image_token)
        self.im_end_id = tok.convert_tokens_to_ids("<|im_end|>")
        # Every assistant reply follows this header in Qwen's chat format; labels start after it.
        self.reply_header = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]

    def resized_widths(self, images) -> list[int]:
        grid = self.processor.image_processor(images=images, return_tensors="pt")["image_grid_thw"]
        return scale.input_widths(self.processor, grid)

    def __call__(self, items: list[dict]) -> dict:
        images = [it["image"] for it in items]
        messages = [it["messages"] for it in items]
        if self.gsd_in_prompt:
            widths = self.resized_widths(images)
            messages = [
                _with_gsd_text(m, 10.0 ** _effective_log10(it, w)) if it.get("gsd_m") is not None else m
                for m, it, w in zip(messages, items, widths)
            ]
        texts = [self.processor.apply_chat_template(m, tokenize=False) for m in messages]
        batch = self.processor(text=texts, images=images, padding=True, return_tensors="pt")
        batch = self._truncate(dict(batch))
        batch["labels"] = self.labels(batch["input_ids"], batch["attention_mask"])
        widths = scale.input_widths(self.processor, batch["image_grid_thw"])
        gsd = [_effective_log10(it, w) for it, w in zip(items, widths)]
        # NaN marks "no GSD known" (LLaVA data without one): such samples get no SSE-U target.
        batch["log10_gsd"] = torch.tensor([g if g is not None else math.nan for g in gsd])
        batch["keys"] = [it["__key__"] for it in items]
        return batch

    def _truncate(self, batch: dict) -> dict:
        n = batch["input_ids"].shape[1]
        if n <= self.max_length:
            return batch
        kept = batch["input_ids"][:, : self.max_length]
        if int((kept == self.image_token_id).sum()) != int((batch["input_ids"] == self.image_token_id).sum()):
            raise ValueError(
                f"max_length={self.max_length} would cut image tokens; raise it or lower the processor's max pixels"
            )
        for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
            if key in batch:
                batch[key] = batch[key][:, : self.max_length]
        return batch

    def labels(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Loss on assistant replies only: the tokens after each reply header, up to and with <|im_end|>."""
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        header = self.reply_header
        h = len(header)
        for row, ids in enumerate(input_ids.tolist()):
            n = int(attention_mask[row].sum())
            i = 0
            while i + h <= n:
                if ids[i : i + h] != header:
                    i += 1
                    continue
                start = end = i + h
                while end < n and ids[end] != self.im_end_id:
                    end += 1
                stop = min(end + 1, n)
                labels[row, start:stop] = input_ids[row, start:stop]
                i = stop
        return labels


def _effective_log10(item: dict, resized_width: int) -> float | None:
    return scale.effective_log10_gsd(item.get("gsd_m"), [item.get("width")], [resized_width])


@dataclass
class DataPosition:
    """Where the data stream is: epoch and batches already taken in it (checkpointed per rank)."""

    epoch: int = 0
    batches: int = 0


def batch_stream(cfg, collator: Collator, position: DataPosition, rank: int, world_size: int) -> Iterator[dict]:
    """Endless batches, epoch after epoch (seed + epoch reshuffles); ``position`` is kept up to date.

    Resuming skips the batches already taken in the current epoch by drawing them again: exact,
    at the cost of re-decoding those images once.
    """
    from geoscale_vqa import geoscale_dataset

    skip = position.batches
    while True:
        dataset = geoscale_dataset(
            cfg.data,
            split=cfg.split,
            sources=cfg.resolved_sources,
            mode="conversation",
            max_turns=cfg.max_turns,
            shuffle_shards=cfg.shuffle_buffer > 0,
            shuffle_buffer=cfg.shuffle_buffer,
            seed=cfg.seed + position.epoch,
            rank=rank,
            world_size=world_size,
        )
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=cfg.batch_size, collate_fn=collator, num_workers=cfg.num_workers
        )
        produced = 0
        for batch in loader:
            produced += 1
            if skip:
                skip -= 1
                continue
            position.batches += 1
            yield batch
        if produced == 0:
            raise ValueError(
                f"rank {rank} of {world_size} got no training samples from {cfg.data} (split {cfg.split!r}, "
                f"sources {cfg.resolved_sources}): the corpus has fewer such samples than ranks x workers "
                f"({world_size} x {max(1, cfg.num_workers)}); use fewer ranks or workers, or more data"
            )
        position.epoch += 1
        position.batches = 0
