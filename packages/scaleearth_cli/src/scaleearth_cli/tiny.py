"""A tiny, randomly initialised Qwen3-VL saved like a real checkpoint (tests, quickstart, benchmarks).

Same architecture classes as Qwen/Qwen3-VL-8B-Instruct (Qwen3VLForConditionalGeneration,
Qwen3VLProcessor with patch 16 / merge 2), so it loads through exactly the same
``AutoModelForImageTextToText.from_pretrained`` / ``AutoProcessor.from_pretrained`` path; only the
sizes differ. The tokenizer is a small byte-level BPE trained here with Qwen's special tokens.
"""

from __future__ import annotations

from pathlib import Path

# Qwen's chat and vision markers, in Qwen's order; the model config refers to them by id.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# The Qwen2/3-VL chat format (no system prompt, no tools): images become
# <|vision_start|><|image_pad|><|vision_end|>, which the processor expands to one pad per visual token.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the BPE merges are learnt from: the words of the corpus's questions and answers.
_WORDS = (
    "user assistant system remote sensing image ground sampling distance metres per pixel GSD "
    "How many cars buildings trees roads fields are there in the image? Is there a car road river field "
    "forest water building? What covers most of the ground? What is the dominant land cover? "
    "Is this area rural or urban? yes no one two three four five six seven eight nine ten "
    "cropland grassland built-up bare ground forest water urban rural land mostly Caption Describe this scene "
    "Could a single tennis court soccer field airport be made out about across below Answer the question "
    "using a single word or phrase . , ? ; m km"
)
# Each word also alone on a line: an answer follows "assistant\n", so it starts a pre-token without the
# leading-space marker; without these lines "no" and "rural" would be spelt letter by letter.
_TRAINING_TEXT = _WORDS + "\n" + "\n".join(_WORDS.replace("?", " ").split()) + "\n0 1 2 3 4 5 6 7 8 9\n"


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_TRAINING_TEXT] * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        # Qwen3-VL tokenizers name their vision markers as attributes; the processor reads these.
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_start_token": "<|vision_start|>",
            "vision_end_token": "<|vision_end|>",
        },
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_tiny_model(
    out: str | Path,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    vocab_size: int = 768,
    min_pixels: int = 32 * 32,
    max_pixels: int = 64 * 64,
) -> Path:
    """Write a tiny Qwen3-VL checkpoint (safetensors weights, tokenizer, processor) to ``out``.

    ``min_pixels``/``max_pixels`` bound the processor's resize (to multiples of 32 px): the defaults
    turn a 96 x 96 image into 64 x 64 px = 4 x 4 patches = 4 visual tokens, fast on a CPU.
    """
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    if hidden_size % 16:
        raise ValueError(f"hidden_size must be a multiple of 16 (4 heads of 16 dims per 64), got {hidden_size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size)
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in SPECIAL_TOKENS}
    heads = hidden_size // 16
    config = Qwen3VLConfig(
        text_config=dict(
            hidden_size=hidden_size,
            intermediate_size=2 * hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            head_dim=16,
            vocab_size=vocab_size,
            max_position_embeddings=4096,
            rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3]},
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=2,
            hidden_size=hidden_size,
            intermediate_size=2 * hidden_size,
            num_heads=heads,
            out_hidden_size=hidden_size,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            deepstack_visual_indexes=[0],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out, safe_serialization=True)
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, size=size),
        video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, size=size),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    return out
