"""Gate kinds are objects the layers dispatch on: a kind registered from outside (a hard step at 1 m) runs in
the native layer and through PEFT, saves and loads, without any change to those modules."""

import math

import pytest
import torch
from torch import nn

import cshlora
from cshlora.gates import GATES, KERNEL_TABLE, RankGate, gate_for, register_gate


class StepGate(RankGate):
    """Every rank open below 1 m, the first half only above: a kind with one trainable parameter."""

    name = "step-test"
    kernel_mode = KERNEL_TABLE
    param_names = ("step_weight",)

    def init_params(self, config, device, dtype):
        return {"step_weight": nn.Parameter(torch.full((config.r,), 0.5, device=device, dtype=dtype))}

    def values(self, s, var, state, config):
        half = torch.arange(config.r, device=s.device) < config.r // 2
        fine = (s < 0).unsqueeze(-1)
        return torch.where(fine | half, state["step_weight"], torch.zeros_like(state["step_weight"]))


@pytest.fixture(autouse=True, scope="module")
def step_gate():
    register_gate(StepGate())
    yield
    GATES.pop("step-test")


def _reference(x, s, base: nn.Linear, A, B, step_weight, scaling):
    """float64, by hand: base(x) + scaling * ((x A^T) * h(s)) B^T with the step gate."""
    A, B, w = A.double(), B.double(), step_weight.double()
    half = torch.arange(len(w)) < len(w) // 2
    h = torch.where((s.double() < 0).unsqueeze(-1) | half, w, torch.zeros_like(w))
    y = x.double() @ base.weight.double().T + base.bias.double()
    return y + scaling * ((x.double() @ A.T) * h.unsqueeze(1)) @ B.T


def test_a_registered_gate_runs_in_the_native_layer_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("q_proj", nn.Linear(12, 10))
    cshlora.inject(model, cshlora.CSHLoRAConfig(r=6, alpha=12, gate="step-test", target_modules=("q_proj",)))
    layer = model.q_proj
    assert layer.gate is gate_for("step-test") and layer.step_weight.requires_grad
    with torch.no_grad():
        layer.lora_B.normal_()
        layer.step_weight.copy_(torch.linspace(0.2, 1.2, 6))
    x, s = torch.randn(2, 3, 12), torch.tensor([math.log10(0.3), math.log10(5.0)])
    cshlora.set_scale(model, s)
    expected = _reference(x, s, layer.base_layer, layer.lora_A, layer.lora_B, layer.step_weight, layer.scaling)
    torch.testing.assert_close(model(x).double(), expected, atol=1e-5, rtol=1e-5)
    assert "q_proj.step_weight" in cshlora.adapter_state_dict(model)
    cshlora.save_adapter(model, tmp_path / "a")
    fresh = nn.Sequential()
    fresh.add_module("q_proj", nn.Linear(12, 10))
    fresh.q_proj.load_state_dict(layer.base_layer.state_dict())
    cshlora.load_adapter(fresh, tmp_path / "a")
    cshlora.set_scale(fresh, s)
    torch.testing.assert_close(fresh(x), model(x))


def test_builtin_kinds_are_objects_with_their_kernel_mode():
    assert {name: type(g).__name__ for name, g in GATES.items() if name != "step-test"} == {
        "continuous": "ContinuousGate", "bucketed": "BucketedGate", "none": "OpenGate"}  # fmt: skip
    assert gate_for("none").is_open and not gate_for("bucketed").is_open
    with pytest.raises(ValueError, match="unknown gate 'x'"):
        gate_for("x")


def test_the_peft_layer_reports_the_active_kind():
    peft = pytest.importorskip("peft")
    from cshlora.peft import cshlora_lora_config

    base = nn.Sequential()
    base.add_module("q_proj", nn.Linear(8, 8))
    model = peft.get_peft_model(base, cshlora_lora_config(cshlora.CSHLoRAConfig(r=4, alpha=8, gate="bucketed")))
    layer = model.base_model.model.q_proj
    assert layer.gate_kind == "bucketed"  # it used to say "continuous" for every gated adapter


def test_a_registered_gate_runs_through_peft(tmp_path):
    peft = pytest.importorskip("peft")
    from cshlora.peft import cshlora_lora_config, from_pretrained, save_pretrained

    def base():
        torch.manual_seed(1)
        m = nn.Sequential()
        m.add_module("q_proj", nn.Linear(12, 10))
        return m

    cs = cshlora.CSHLoRAConfig(r=6, alpha=12, gate="step-test", target_modules=("q_proj",))
    model = peft.get_peft_model(base(), cshlora_lora_config(cs))
    layer = model.base_model.model.q_proj
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()
        layer.lora_step_weight["default"].copy_(torch.linspace(0.2, 1.2, 6))
    assert layer.lora_step_weight["default"].requires_grad and layer.gate_kind == "step-test"
    x, s = torch.randn(2, 3, 12), torch.tensor([math.log10(0.3), math.log10(5.0)])
    cshlora.set_scale(model, s)
    out = model(x)
    expected = _reference(x, s, layer.base_layer, layer.lora_A["default"].weight, layer.lora_B["default"].weight,
                          layer.lora_step_weight["default"], layer.scaling["default"])  # fmt: skip
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    save_pretrained(model, tmp_path / "p")
    reloaded = from_pretrained(base(), tmp_path / "p")
    cshlora.set_scale(reloaded, s)
    torch.testing.assert_close(reloaded(x), out)
