"""The teacher backend: reply parsing, and a tiny locally created Qwen3-VL driven through the build."""

import json

import pytest
from geoscale_testutil import read_plain

from geoscale_vqa.qa.teacher import TeacherConfig, parse_teacher_output, teacher_prompt


def test_prompt_states_gsd_footprint_and_tier():
    prompt = teacher_prompt(0.5, 200, 100, "object", 3)
    assert "0.5 m per pixel" in prompt and "100 m × 50 m" in prompt and "3 question-answer pairs" in prompt
    assert "vehicles" in prompt and "JSON list" in prompt


def test_parse_accepts_json_in_prose_and_fences():
    reply = (
        'Sure! ```json\n[{"question": "How many cars are parked?", "answer": 4}, '
        '{"question": "Is the lot full?", "answer": "no"}]\n``` Hope this helps [1].'
    )
    qa, failures = parse_teacher_output(reply, "object", limit=5)
    assert [(q.question, q.answer, q.tier, q.origin) for q in qa] == [
        ("How many cars are parked?", "4", "object", "teacher"),
        ("Is the lot full?", "no", "object", "teacher"),
    ]
    assert failures == []


def test_parse_rejects_and_counts_malformed_pairs():
    reply = json.dumps(
        [
            {"question": "Is there a river?", "answer": "yes"},
            {"question": "Is there a river?", "answer": "no"},  # duplicate
            {"question": "Roads?", "answer": ""},  # empty answer
            {"question": "", "answer": "x"},  # empty question
            {"q": "wrong keys", "a": "x"},  # not question/answer
            "just a string",  # not an object
            {"question": "Same?", "answer": "same?"},  # echo
            {"question": "Is it urban?", "answer": "x" * 400},  # overlong
        ]
    )
    qa, failures = parse_teacher_output(reply, "structure", limit=5)
    assert [(q.question, q.answer) for q in qa] == [("Is there a river?", "yes")]
    assert len(failures) == 7


def test_parse_rejects_replies_without_a_list_and_respects_the_limit():
    assert parse_teacher_output("I cannot see anything.", "semantic", 3)[0] == []
    assert len(parse_teacher_output("I cannot see anything.", "semantic", 3)[1]) == 1
    assert parse_teacher_output('{"question": "a?", "answer": "b"}', "semantic", 3)[0] == []
    many = json.dumps([{"question": f"Question {i}?", "answer": "yes"} for i in range(6)])
    qa, failures = parse_teacher_output(many, "semantic", 2)
    assert len(qa) == 2 and failures == []


STEERED_REPLY = '[{"question": "Is there a road?", "answer": "yes"}, {"question": "What covers most of the ground?", "answer": "grass"}]'  # noqa: E501


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    """A tiny random Qwen3-VL with a byte-level BPE tokenizer and a PIL image processor, saved to disk."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3VLConfig, Qwen3VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    special = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(["remote sensing image ground sampling distance question answer"] * 10, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    # One ordinary token that spells a whole valid reply, so a steered model can produce it (see below).
    tokenizer.add_tokens([AddedToken(STEERED_REPLY, normalized=False, special=False)])
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
        "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in special}
    config = Qwen3VLConfig(
        text_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            vocab_size=512,
            rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3]},
        ),
        vision_config=dict(
            depth=2,
            hidden_size=64,
            intermediate_size=128,
            num_heads=4,
            out_hidden_size=64,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            deepstack_visual_indexes=[0],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-qwen3-vl")
    Qwen3VLForConditionalGeneration(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    Qwen2VLImageProcessorPil(
        patch_size=16, merge_size=2, temporal_patch_size=2, min_pixels=32 * 32, max_pixels=64 * 64
    ).save_pretrained(path)
    return path, tokenizer.convert_tokens_to_ids(STEERED_REPLY)


def _scene_tiers(gsd):
    return [t for t, limit in (("object", 2.0), ("structure", 30.0), ("semantic", 1000.0)) if gsd <= limit]


@pytest.mark.slow
def test_random_tiny_teacher_output_is_rejected_and_counted(tiny_teacher, tmp_path):
    path, _ = tiny_teacher
    build_with = TeacherConfig(str(path), max_new_tokens=6, qa_per_tier=2)
    from geoscale_vqa import build

    manifest = build(["synthetic=3"], tmp_path, teacher=build_with).manifest
    samples = read_plain(tmp_path)
    expected_calls = sum(len(_scene_tiers(s["json"]["gsd_m"])) for s in samples.values())
    assert expected_calls > 0
    assert manifest["counts"]["rejects_by_reason"] == {"malformed teacher output": expected_calls}
    assert "teacher" not in manifest["counts"]["by_origin"]


@pytest.mark.slow
def test_steered_tiny_teacher_qa_land_in_the_corpus(tiny_teacher, tmp_path, monkeypatch):
    """The real generate loop, processor and parser, with the logits steered to the one-token valid reply."""
    import torch

    from geoscale_vqa import build
    from geoscale_vqa.qa import teacher as teacher_module

    path, reply_id = tiny_teacher
    original_init = teacher_module.Teacher.__init__

    def steered_init(self, config):
        original_init(self, config)
        bias = torch.zeros(self.model.lm_head.out_features)
        bias[reply_id] = 1e4
        self.model.lm_head.register_forward_hook(lambda module, args, out: out + bias)

    monkeypatch.setattr(teacher_module.Teacher, "__init__", steered_init)
    build(["synthetic=3"], tmp_path, teacher=TeacherConfig(str(path), max_new_tokens=2, qa_per_tier=2))
    for sample in read_plain(tmp_path).values():
        record = sample["json"]
        teacher_qa = [
            (q["question"], q["answer"], q["tier"], q["type"]) for q in record["qa"] if q["origin"] == "teacher"
        ]
        assert teacher_qa == [
            (question, answer, tier, "teacher")
            for tier in _scene_tiers(record["gsd_m"])
            for question, answer in (("Is there a road?", "yes"), ("What covers most of the ground?", "grass"))
        ]
