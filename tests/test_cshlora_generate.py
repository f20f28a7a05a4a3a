"""cshlora inside Hugging Face ``generate`` on a model that is not the project's: beams and several returned
sequences expand each sample's scale, and ``set_gsd`` takes metres."""

import math

import pytest
import torch
from hf_testutil import tiny_qwen2

import cshlora

transformers = pytest.importorskip("transformers")


@pytest.fixture
def qwen2():
    model = tiny_qwen2(eos_token_id=None)
    cshlora.inject(model, cshlora.CSHLoRAConfig(r=8, alpha=16))
    with torch.no_grad():  # B = 0 would make every scale give the same output
        for _, layer in cshlora.cshlora_layers(model):
            layer.lora_B.normal_(0, 0.5)
    return model


def _generate(model, ids, log10_gsd, **kwargs):
    cshlora.set_scale(model, log10_gsd)
    return model.generate(ids, max_new_tokens=6, do_sample=False, min_new_tokens=6, **kwargs)


@pytest.mark.parametrize("kwargs", [{"num_beams": 2}, {"num_beams": 3, "num_return_sequences": 3}])
def test_beams_use_each_samples_own_scale(qwen2, kwargs):
    ids = torch.randint(1, 64, (2, 5), generator=torch.Generator().manual_seed(1))
    scales = torch.tensor([math.log10(0.3), math.log10(30.0)])
    together = _generate(qwen2, ids, scales, **kwargs)
    # reference: each sample alone, with its scale as a scalar
    alone = torch.cat([_generate(qwen2, ids[i : i + 1], scales[i], **kwargs) for i in range(2)])
    assert torch.equal(together, alone)
    # and the scale matters: the other sample's scale gives another continuation
    swapped = torch.cat([_generate(qwen2, ids[i : i + 1], scales[1 - i], **kwargs) for i in range(2)])
    assert not torch.equal(together, swapped)


def test_sampling_several_sequences_per_sample(qwen2):
    ids = torch.randint(1, 64, (2, 5), generator=torch.Generator().manual_seed(2))
    cshlora.set_scale(qwen2, torch.tensor([-0.5, 1.5]))
    torch.manual_seed(0)
    out = qwen2.generate(ids, max_new_tokens=4, do_sample=True, num_return_sequences=2)
    assert out.shape == (4, 9)


def test_a_batch_that_is_not_a_multiple_is_still_refused(qwen2):
    cshlora.set_scale(qwen2, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="leading dimensions"):
        qwen2(torch.randint(1, 64, (3, 4)))


def test_set_gsd_takes_metres(qwen2):
    ids = torch.randint(1, 64, (2, 4), generator=torch.Generator().manual_seed(3))
    cshlora.set_gsd(qwen2, [0.15, 10.0])
    in_metres = qwen2(ids).logits
    cshlora.set_scale(qwen2, [math.log10(0.15), 1.0])
    torch.testing.assert_close(in_metres, qwen2(ids).logits)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="gsd_m must be finite and > 0"):
            cshlora.set_gsd(qwen2, [0.15, bad])
