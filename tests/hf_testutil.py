"""A tiny Hugging Face model that is not the project's: the "foreign model" of the cross-package tests."""

import torch


def tiny_qwen2(*, vocab: int = 64, eos_token_id=2, train: bool = False):
    """A 2-layer, 32-wide Qwen2 causal LM with fixed random weights (seed 0)."""
    import transformers

    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, eos_token_id=eos_token_id, pad_token_id=0,
    )  # fmt: skip
    model = transformers.Qwen2ForCausalLM(config)
    return model if train else model.eval()
