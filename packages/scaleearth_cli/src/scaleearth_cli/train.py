"""Stage-1 SFT and Stage-2 CS-HLoRA + SSE-U training of Qwen3-VL (``scaleearth train``).

One loop serves both stages; only the model set-up differs. Single process, or one process per
rank under torchrun (``python -m scaleearth_cli.train --config FILE`` is the per-rank entry point).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import cshlora

from . import checkpoint as ckpt
from . import distributed
from .adapters import ADAPTER_KINDS
from .config import RESOLVED_CONFIG_NAME, TrainConfig
from .data import Collator, DataPosition, batch_stream
from .modeling import (
    ScaleEarthVLM,
    adapter_config,
    enable_gradient_checkpointing,
    load_vlm,
    set_stage1_trainable,
    visual_feature_size,
)

METRICS_NAME = "metrics.jsonl"
FINAL_DIR = "final"
MERGED_DIR = "merged"
SSEU_HEAD_NAME = "sseu_head.safetensors"
ADAPTER_DIR = "adapter"


class TrainingError(RuntimeError):
    """Training cannot go on (too many non-finite steps, an unusable run folder, ...)."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    skipped_steps: int
    final_dir: Path
    merged_dir: Path | None
    model: ScaleEarthVLM  # the trained module (rank 0's copy under DDP)
    processor: object


# -- model set-up ------------------------------------------------------------------------------
def build_model(cfg: TrainConfig, device: torch.device) -> tuple[ScaleEarthVLM, object]:
    """Load the VLM, make the stage's parameters trainable, attach SSE-U (Stage 2)."""
    vlm, processor = load_vlm(
        cfg.model, quantize=cfg.resolved_quantize, device=device, trust_remote_code=cfg.trust_remote_code
    )
    torch.manual_seed(cfg.seed)  # adapter and head initialisation identical on every rank and every run
    head = None
    if cfg.stage == 1:
        if cfg.full_finetune:
            for name, p in vlm.named_parameters():
                p.requires_grad_(".visual." not in f".{name}")
        else:
            cshlora.inject(vlm, cshlora.CSHLoRAConfig(r=cfg.r, alpha=cfg.alpha, gate="none"))
        set_stage1_trainable(vlm, unfreeze_vision=cfg.unfreeze_vision, unfreeze_projector=cfg.unfreeze_projector)
    else:
        cshlora.inject(vlm, adapter_config(cfg.adapter, r=cfg.r, alpha=cfg.alpha))
        head = _sseu_head(cfg, visual_feature_size(vlm)).to(device)
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(vlm)
    model = ScaleEarthVLM(
        vlm, head, gate_gsd=cfg.gate_gsd, beta=cfg.beta, sseu_warmup_steps=cfg.sseu_warmup_steps, seed=cfg.seed
    )
    return model, processor


def _sseu_head(cfg: TrainConfig, width: int):
    from sseu import SSEUHead, load_head

    if cfg.sseu_init is None:
        # check_inputs=False: the NaN check on features costs a host sync per step; the loss check covers it.
        return SSEUHead(width, hidden=cfg.sseu_hidden, check_inputs=False)
    head = load_head(cfg.sseu_init)
    if head.in_features != width:
        raise ValueError(f"sseu_init {cfg.sseu_init} reads {head.in_features}-wide features; this model's are {width}")
    head.check_inputs = False
    if cfg.sseu_freeze:
        head.requires_grad_(False)
    return head


def make_optimizer(cfg: TrainConfig, model: ScaleEarthVLM):
    trainable = [p for p in model.parameters() if p.requires_grad]
    head_ids = {id(p) for p in model.sseu.parameters() if p.requires_grad} if model.sseu is not None else set()
    groups = [{"params": [p for p in trainable if id(p) not in head_ids], "lr": cfg.lr}]
    if head_ids:
        groups.append({"params": [p for p in trainable if id(p) in head_ids], "lr": cfg.sseu_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)

    def warmup_cosine(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine)


def export(model: ScaleEarthVLM, folder: Path) -> None:
    """The run's deliverables: the adapter (cshlora format) and the SSE-U head (sseu format)."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(True for _ in cshlora.cshlora_layers(model.vlm)):
        cshlora.save_adapter(model.vlm, folder / ADAPTER_DIR)
    if model.sseu is not None:
        from sseu import save_head

        save_head(model.sseu, folder / SSEU_HEAD_NAME)


# -- the loop ----------------------------------------------------------------------------------
class _Metrics:
    """Per-step values stay on the device; they are read (one sync) every ``log_every`` steps."""

    def __init__(self, path: Path | None, progress, task):
        self.path, self.progress, self.task = path, progress, task
        self.rows: list[dict] = []
        self.window_start = time.perf_counter()

    def add(self, **row) -> None:
        self.rows.append(row)

    def flush(self) -> dict | None:
        if not self.rows:
            return None
        keys = ("loss", "lm_loss", "gsd_nll")
        values = torch.stack([torch.stack([r[k].float() for k in keys]) for r in self.rows]).tolist()
        seconds = max(time.perf_counter() - self.window_start, 1e-9)
        tokens = sum(r["tokens"] for r in self.rows)
        out = []
        for r, vals in zip(self.rows, values):
            rec = {k: r[k] for k in ("step", "lr", "tokens", "skipped")} | dict(zip(keys, vals))
            rec["tokens_per_s"] = tokens / seconds
            out.append(rec)
        if self.path is not None:
            with self.path.open("a") as f:
                f.writelines(json.dumps(rec) + "\n" for rec in out)
        last = out[-1]
        if self.progress is not None:
            self.progress.update(
                self.task,
                completed=last["step"],
                loss=f"{last['loss']:.4f}",
                lm=f"{last['lm_loss']:.4f}",
                nll=f"{last['gsd_nll']:.4f}",
                lr=f"{last['lr']:.2e}",
                tps=f"{last['tokens_per_s']:.0f}",
            )
        self.rows = []
        self.window_start = time.perf_counter()
        return last


def _progress(console):
    from geoscale_vqa.progress import progress_bar

    return progress_bar(console, "train", fields=(
        "loss {task.fields[loss]} · lm {task.fields[lm]} · gsd-nll {task.fields[nll]}",
        "lr {task.fields[lr]} · {task.fields[tps]} tok/s",
    ))  # fmt: skip


def _truncate_metrics(path: Path, step: int) -> None:
    """After a resume, forget the rows a killed run logged past its checkpoint: the curve goes on from there."""
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


def _fingerprint(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(ckpt.trainable_state(model).items()):
        h.update(name.encode())
        h.update(tensor.float().numpy().tobytes())
    return h.hexdigest()


def _check_ranks_agree(info, model, run_dir: Path) -> None:
    """Every rank must hold the same trainable parameters after training (DDP's promise); record it."""
    digests = [None] * info.world_size
    torch.distributed.all_gather_object(digests, _fingerprint(model))
    if info.is_main:
        (run_dir / "ddp_check.json").write_text(json.dumps({"digests": digests}, indent=2))
        if len(set(digests)) != 1:
            raise TrainingError(f"ranks ended with different parameters: {digests}")


def _resume_from(cfg: TrainConfig, run_dir: Path) -> Path | None:
    existing = ckpt.latest_checkpoint(run_dir)
    if cfg.resume == "none":
        if existing is not None:
            raise TrainingError(
                f"{run_dir} already holds checkpoints ({existing.name}); pass --resume auto or pick another --out"
            )
        return None
    if cfg.resume == "auto":
        return existing
    path = Path(cfg.resume)
    if not (path / "trainer_state.json").is_file():
        raise TrainingError(f"--resume {path}: not a complete checkpoint folder")
    return path


def train(cfg: TrainConfig, console=None) -> TrainResult:
    """Run one training job as configured; returns where everything was written."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device cuda was asked for, but torch sees no GPU")
    info = distributed.setup(cfg.device)
    try:
        return _train(cfg, info, console)
    finally:
        distributed.teardown(info)


def _train(cfg: TrainConfig, info, console) -> TrainResult:
    run_dir = Path(cfg.out)
    if not cfg.data:
        raise TrainingError("no training data: give --data (a build-data output folder)")
    resume_from = _resume_from(cfg, run_dir)
    if info.is_main:
        cfg.save(run_dir / RESOLVED_CONFIG_NAME)
    distributed.barrier(info)

    model, processor = build_model(cfg, info.device)
    optimizer, scheduler = make_optimizer(cfg, model)
    step, skipped, position = 0, 0, DataPosition()
    if resume_from is not None:
        state, position = ckpt.load_checkpoint(resume_from, model, optimizer, scheduler, info.rank)
        step, skipped = state["step"], state["skipped"]
    metrics_path = run_dir / METRICS_NAME
    if info.is_main:
        _truncate_metrics(metrics_path, step)

    model.train()
    runner = model
    if info.enabled:
        device_ids = [info.local_rank] if info.device.type == "cuda" else None
        runner = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    use_bf16 = cfg.bf16 if cfg.bf16 is not None else info.device.type == "cuda"
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if use_bf16 and info.device.type == "cuda"
        else contextlib.nullcontext()
    )
    collator = Collator(
        processor, max_length=cfg.max_length, gsd_in_prompt=ADAPTER_KINDS[cfg.adapter].gsd_in_prompt and cfg.stage == 2
    )
    stream = batch_stream(cfg, collator, position, info.rank, info.world_size)
    params = [p for p in model.parameters() if p.requires_grad]

    progress = _progress(console) if info.is_main and cfg.progress else None
    task = None
    if progress is not None:
        progress.start()
        task = progress.add_task(
            "train", total=cfg.max_steps, completed=step, loss="-", lm="-", nll="-", lr="-", tps="-"
        )
    metrics = _Metrics(metrics_path if info.is_main else None, progress, task)
    try:
        while step < cfg.max_steps:
            lm_sum = torch.zeros((), device=info.device)
            nll_sum = torch.zeros((), device=info.device)
            tokens = 0
            for micro in range(cfg.grad_accum):
                batch = next(stream)
                tokens += int(batch["attention_mask"].sum())
                last = micro == cfg.grad_accum - 1
                sync = runner.no_sync() if info.enabled and not last else contextlib.nullcontext()
                with sync:
                    with autocast:
                        out = runner(batch, step)
                        loss = out.lm_loss + cfg.gsd_loss_weight * out.gsd_nll
                    (loss / cfg.grad_accum).backward()
                lm_sum += out.lm_loss.detach().float()
                nll_sum += out.gsd_nll.detach().float()
            lm, nll = lm_sum / cfg.grad_accum, nll_sum / cfg.grad_accum
            total = lm + cfg.gsd_loss_weight * nll
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            # One host sync per optimizer step (as AMP's GradScaler does): a step with a non-finite
            # loss or gradient on any rank is skipped everywhere, so the ranks stay identical.
            bad = distributed.any_rank(info, not bool(torch.isfinite(total) & torch.isfinite(grad_norm)))
            lr = scheduler.get_last_lr()[0]
            if bad:
                skipped += 1
                if skipped > cfg.max_bad_steps:
                    raise TrainingError(
                        f"stopping at step {step + 1}: {skipped} steps had a non-finite loss or gradient "
                        f"(limit --max-bad-steps {cfg.max_bad_steps}); lower the learning rate or check the data"
                    )
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()  # a skipped step still consumed its batch: the schedule follows the data
            step += 1
            metrics.add(step=step, loss=total, lm_loss=lm, gsd_nll=nll, lr=lr, tokens=tokens, skipped=bool(bad))
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                metrics.flush()
            if step % cfg.save_every == 0 and step < cfg.max_steps:
                metrics.flush()
                _save(cfg, info, run_dir, step, skipped, model, optimizer, scheduler, position)
    finally:
        if progress is not None:
            progress.stop()

    if info.enabled:
        _check_ranks_agree(info, model, run_dir)
    final_dir, merged_dir = run_dir / FINAL_DIR, None
    if info.is_main:
        export(model, final_dir)
        (final_dir / "trainer_state.json").write_text(json.dumps({"step": step, "skipped": skipped}))
        if cfg.merge:
            merged_dir = merge_stage1(model, processor, run_dir / MERGED_DIR)
    distributed.barrier(info)
    return TrainResult(run_dir, step, skipped, final_dir, merged_dir, model, processor)


def _save(cfg, info, run_dir, step, skipped, model, optimizer, scheduler, position) -> None:
    tmp = ckpt.checkpoint_path(run_dir, step)
    tmp = tmp.with_name(tmp.name + ".tmp")
    ckpt.save_rank_state(tmp, info.rank, position)
    distributed.barrier(info)  # every rank's state is in the folder before rank 0 seals it
    if info.is_main:
        ckpt.save_checkpoint(
            run_dir, step, model, optimizer, scheduler, {"skipped": skipped, "stage": cfg.stage},
            lambda folder: export(model, folder),
        )  # fmt: skip
    distributed.barrier(info)


def merge_stage1(model: ScaleEarthVLM, processor, out: Path) -> Path:
    """Fold the Stage-1 LoRA into the weights and save a standalone model folder (safetensors)."""
    vlm = model.vlm
    if any(True for _ in cshlora.cshlora_layers(vlm)):
        vlm = cshlora.merge(vlm, unload=True)
    for p in vlm.parameters():
        p.requires_grad_(False)
    vlm.config.use_cache = True
    vlm.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Per-rank entry point that ``scaleearth train --nproc N`` starts under torchrun."""
    import argparse

    from rich.console import Console

    from .config import load_config

    parser = argparse.ArgumentParser(prog="python -m scaleearth_cli.train")
    parser.add_argument("--config", required=True, help="a resolved run config (YAML)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, {})
    try:
        train(cfg, console=Console(stderr=True))
    except TrainingError as err:
        Console(stderr=True).print(f"[red]error:[/red] {err}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
