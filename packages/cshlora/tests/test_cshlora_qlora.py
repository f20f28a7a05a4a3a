"""CS-HLoRA on a bitsandbytes NF4 base (QLoRA), on CPU."""

import warnings

import pytest
import torch
from torch import nn

import cshlora
from cshlora import CSHLoRAConfig

bnb = pytest.importorskip("bitsandbytes")


def nf4_copy(linear: nn.Linear) -> nn.Module:
    q = bnb.nn.Linear4bit(
        linear.in_features,
        linear.out_features,
        bias=linear.bias is not None,
        compute_dtype=torch.float32,
        quant_type="nf4",
    )
    q.load_state_dict(linear.state_dict())
    return q.to("cpu")  # quantises


class Net(nn.Module):
    def __init__(self, up, down):
        super().__init__()
        self.up_proj, self.down_proj = up, down

    def forward(self, x):
        return self.down_proj(torch.relu(self.up_proj(x)))


def test_wraps_linear4bit_and_base_stays_quantised():
    torch.manual_seed(0)
    model = cshlora.inject(Net(nf4_copy(nn.Linear(32, 64)), nf4_copy(nn.Linear(64, 8))), CSHLoRAConfig(r=8))
    layer = model.up_proj
    assert type(layer.base_layer).__name__ == "Linear4bit"
    assert layer.base_layer.weight.dtype == torch.uint8  # packed NF4
    assert layer.lora_A.dtype == torch.float32
    assert not any(p.requires_grad for p in layer.base_layer.parameters())


def test_qlora_base_trains_on_a_toy_regression():
    torch.manual_seed(0)
    teacher = Net(nn.Linear(32, 64), nn.Linear(64, 8))
    student = cshlora.inject(Net(nf4_copy(nn.Linear(32, 64)), nf4_copy(nn.Linear(64, 8))), CSHLoRAConfig(r=8, alpha=16))
    x = torch.randn(128, 32)
    s = torch.empty(128).uniform_(-1, 2)
    with torch.no_grad():
        y = teacher(x)
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-2)
    cshlora.set_scale(student, s)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.mse_loss(student(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_merge_into_nf4_equals_requantised_reference():
    torch.manual_seed(0)
    dense = nn.Linear(64, 32)
    layer = cshlora.CSHLoRALinear(nf4_copy(dense), CSHLoRAConfig(r=8))
    nn.init.normal_(layer.lora_B, std=0.01)
    w0 = bnb.functional.dequantize_4bit(layer.base_layer.weight.data, layer.base_layer.weight.quant_state)
    reference = nf4_copy(nn.Linear(64, 32))
    with torch.no_grad():
        reference.weight = bnb.nn.Params4bit(
            (w0 + layer.delta_weight(0.5)).float(), requires_grad=False, quant_type="nf4"
        ).to("cpu")
        reference.bias.copy_(dense.bias)
    x = torch.randn(5, 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer.merge(0.5)
    assert any("re-quantises" in str(w.message) for w in caught)
    torch.testing.assert_close(layer(x), reference(x))
