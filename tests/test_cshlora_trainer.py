"""CS-HLoRA inside Hugging Face Trainer and TRL's SFTTrainer (tiny Qwen2, fake GSDs): every micro-batch of a
gradient accumulation, and every checkpointed recomputation, runs with its own samples' scales."""

import math

import pytest
import torch
from hf_testutil import tiny_qwen2

import cshlora
import cshlora.hf

transformers = pytest.importorskip("transformers")

VOCAB = 64


def _qwen2():
    return tiny_qwen2(vocab=VOCAB, train=True)


def _gsd_of(first_token: int) -> float:
    """The fake GSD of an example is a function of its first token, so any shuffling can be checked."""
    return 0.1 * 2 ** (first_token % 10)


def _examples(n=24):
    gen = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        ids = torch.randint(1, VOCAB, (int(torch.randint(5, 9, (1,), generator=gen)),), generator=gen).tolist()
        rows.append({"input_ids": ids, "gsd_m": _gsd_of(ids[0])})
    return rows


class _Spy:
    """Records, for each top-level forward, the scale its inputs call for, and every layer call's scale."""

    def __init__(self, model, layer):
        self.events = []
        model.register_forward_pre_hook(self.on_model, with_kwargs=True, prepend=True)
        layer.register_forward_pre_hook(self.on_layer)

    def on_model(self, module, args, kwargs):
        ids = kwargs["input_ids"]
        self.events.append(("batch", torch.tensor([math.log10(_gsd_of(int(t))) for t in ids[:, 0]])))

    def on_layer(self, module, args):
        self.events.append(("layer", module._scale.detach().cpu().clone()))

    def check(self):
        expected, layer_calls = None, 0
        for kind, value in self.events:
            if kind == "batch":
                expected = value
            else:
                torch.testing.assert_close(value.float(), expected.float())
                layer_calls += 1
        return layer_calls


def _args(tmp_path, **kw):
    return dict(output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=2,
                max_steps=3, learning_rate=1e-2, logging_steps=1, save_strategy="no", report_to=[],
                remove_unused_columns=False, use_cpu=True, seed=0, **kw)  # fmt: skip


@pytest.mark.parametrize("checkpointing", [False, True])
def test_trainer_sets_each_micro_batchs_scales(tmp_path, checkpointing):
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    model = cshlora.inject(_qwen2(), cshlora.CSHLoRAConfig(r=4, alpha=8))
    cshlora.hf.scale_from_batch(model)
    first_layer = next(layer for _, layer in cshlora.cshlora_layers(model))
    spy = _Spy(model, first_layer)
    tokenizer = _tokenizer()
    collator = cshlora.hf.GSDCollator(DataCollatorForLanguageModeling(tokenizer, mlm=False))
    args = TrainingArguments(**_args(tmp_path, gradient_checkpointing=checkpointing))
    before = first_layer.lora_B.detach().clone()
    Trainer(model=model, args=args, train_dataset=_examples(), data_collator=collator).train()
    calls = spy.check()
    assert calls == 6 * (2 if checkpointing else 1)  # 3 steps x 2 micro-batches, recomputed once more
    assert not torch.equal(first_layer.lora_B, before)  # it trained


def _tokenizer():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="t1"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="t0", eos_token="t2", unk_token="t1")


def test_a_forgotten_collator_is_an_error_not_a_stale_scale(tmp_path):
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    model = cshlora.inject(_qwen2(), cshlora.CSHLoRAConfig(r=4, alpha=8))
    cshlora.hf.scale_from_batch(model)
    plain = DataCollatorForLanguageModeling(_tokenizer(), mlm=False)
    trainer = Trainer(model=model, args=TrainingArguments(**_args(tmp_path)), train_dataset=_examples(),
                      data_collator=plain)  # fmt: skip
    with pytest.raises(ValueError, match="GSDCollator"):
        trainer.train()
    stripped = [{"input_ids": e["input_ids"]} for e in _examples(4)]
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        cshlora.hf.GSDCollator(plain)(stripped)
    with pytest.raises(ValueError, match="example 1: gsd_m must be a finite number > 0"):
        cshlora.hf.GSDCollator(plain)([{"input_ids": [3, 4], "gsd_m": 1.0}, {"input_ids": [3], "gsd_m": 0}])


def test_sft_trainer_with_a_peft_cshlora_model(tmp_path):
    peft = pytest.importorskip("peft")
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from cshlora.peft import cshlora_lora_config

    model = peft.get_peft_model(_qwen2(), cshlora_lora_config(cshlora.CSHLoRAConfig(r=4, alpha=8),
                                                              target_modules=["q_proj", "v_proj"]))  # fmt: skip
    cshlora.hf.scale_from_batch(model)
    layer = next(m for m in model.modules() if isinstance(m, cshlora.peft.PeftCSHLoRALinear))
    spy = _Spy(model, layer)
    train = datasets.Dataset.from_list(_examples())
    config = trl.SFTConfig(**_args(tmp_path), max_length=16, dataset_kwargs={"skip_prepare_dataset": True})
    collator = cshlora.hf.GSDCollator(trl.trainer.sft_trainer.DataCollatorForLanguageModeling(pad_token_id=0))
    trainer = trl.SFTTrainer(model=model, args=config, train_dataset=train, data_collator=collator,
                             processing_class=_tokenizer())  # fmt: skip
    trainer.train()
    # TRL checkpoints activations by default: each micro-batch's layers run twice, both times at its scales
    assert spy.check() == 6 * (2 if config.gradient_checkpointing else 1)
