import copy
import json

import pytest
import torch
from cshlora_test_utils import TinyBlock, randomize_adapter
from torch import nn
from torch.utils.checkpoint import checkpoint

import cshlora
from cshlora import CSHLoRAConfig, CSHLoRALinear


def injected(seed=0, **cfg):
    torch.manual_seed(seed)
    model = cshlora.inject(TinyBlock(), CSHLoRAConfig(**{"r": 8, "alpha": 16, **cfg}))
    randomize_adapter(model, seed)
    return model


def test_inject_wraps_targets_and_freezes_the_rest():
    model = injected()
    wrapped = {name for name, _ in cshlora.cshlora_layers(model)}
    assert wrapped == {"q_proj", "v_proj", "up_proj", "down_proj"}
    assert isinstance(model.head, nn.Linear)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{m}.{p}" for m in wrapped for p in ("lora_A", "lora_B", "tau", "sharpness")}


def test_inject_respects_exclude_and_reports_no_match():
    model = cshlora.inject(TinyBlock(), CSHLoRAConfig(r=4, exclude_modules=["q_proj", "v_proj"]))
    assert {n for n, _ in cshlora.cshlora_layers(model)} == {"up_proj", "down_proj"}
    with pytest.raises(ValueError, match="no linear layer of TinyBlock matches"):
        cshlora.inject(TinyBlock(), CSHLoRAConfig(target_modules=["o_proj"]))
    with pytest.raises(ValueError, match="already has CS-HLoRA layers"):
        cshlora.inject(model, CSHLoRAConfig(r=4))


def test_set_scale_reaches_every_layer_and_stays():
    model = injected()
    x = torch.randn(2, 5, 16)
    s = torch.tensor([0.2, 1.3])
    cshlora.set_scale(model, s)
    first = model(x)
    assert torch.equal(model(x), first)  # the value stays until the next call
    for _, layer in cshlora.cshlora_layers(model):
        torch.testing.assert_close(
            layer(torch.ones(2, layer.in_features)), layer(torch.ones(2, layer.in_features), log10_gsd=s)
        )
    cshlora.set_scale(model, torch.tensor([2.0, 2.0]))
    assert not torch.allclose(model(x), first)
    cshlora.clear_scale(model)
    with pytest.raises(ValueError, match="no scale set"):
        model(x)


def test_set_scale_validates_input():
    model = injected()
    with pytest.raises(ValueError, match="must be finite"):
        cshlora.set_scale(model, torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="var has shape"):
        cshlora.set_scale(model, torch.zeros(2), var=torch.zeros(3))
    with pytest.raises(ValueError, match="must be a number"):
        cshlora.set_scale(model, "ten metres")
    with pytest.raises(ValueError, match="no CS-HLoRA layers"):
        cshlora.set_scale(TinyBlock(), 0.0)


def test_scale_survives_gradient_checkpointing():
    model = injected()
    x = torch.randn(3, 4, 16)
    cshlora.set_scale(model, torch.tensor([0.1, 1.0, 2.5]), var=torch.tensor([0.0, 0.2, 0.5]))

    def grads(use_checkpoint):
        model.zero_grad()
        out = checkpoint(model, x, use_reentrant=False) if use_checkpoint else model(x)
        out.square().sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    plain, recomputed = grads(False), grads(True)
    for name in plain:
        torch.testing.assert_close(recomputed[name], plain[name], msg=name)


def test_merge_equals_unmerged_at_that_scale():
    model = injected()
    x = torch.randn(2, 5, 16)
    s0 = 0.8
    cshlora.set_scale(model, s0)
    expected = model(x)
    merged = cshlora.merge(copy.deepcopy(model), s0)
    assert not list(cshlora.cshlora_layers(merged))  # unloaded: plain nn.Linear again
    torch.testing.assert_close(merged(x), expected, atol=1e-5, rtol=1e-5)


def test_merge_with_variance_and_unmerge_restores_base():
    model = injected()
    originals = {n: layer.base_layer.weight.clone() for n, layer in cshlora.cshlora_layers(model)}
    x = torch.randn(4, 16)
    cshlora.set_scale(model, 1.1, var=0.3)
    expected = model(x)
    cshlora.merge(model, 1.1, var=0.3, unload=False)
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
    cshlora.unmerge(model)
    for n, layer in cshlora.cshlora_layers(model):
        torch.testing.assert_close(layer.base_layer.weight, originals[n], atol=1e-6, rtol=0)
    torch.testing.assert_close(model(x), expected)


def test_merge_needs_one_scale():
    model = injected()
    with pytest.raises(ValueError, match="one deployment scale"):
        cshlora.merge(model, torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="one deployment scale"):
        cshlora.merge(injected(), None)


def test_save_then_load_into_fresh_model_reproduces_outputs(tmp_path):
    torch.manual_seed(3)
    base = TinyBlock()
    fresh = copy.deepcopy(base)
    tiers = (cshlora.Tier("fine", 1, 1.0, 3.0), cshlora.Tier("coarse", 1, 50.0))
    model = cshlora.inject(base, CSHLoRAConfig(r=8, alpha=16, tiers=tiers))
    randomize_adapter(model, 3)
    x = torch.randn(2, 3, 16)
    cshlora.set_scale(model, torch.tensor([0.0, 1.5]))
    expected = model(x)
    out = cshlora.save_adapter(model, tmp_path / "adapter")
    assert sorted(p.name for p in out.iterdir()) == ["cshlora_adapter.safetensors", "cshlora_config.json"]
    meta = json.loads((out / "cshlora_config.json").read_text())
    assert meta["format"] == "cshlora-adapter/1" and meta["config"]["r"] == 8

    cshlora.load_adapter(fresh, out)
    cshlora.set_scale(fresh, torch.tensor([0.0, 1.5]))
    assert torch.equal(fresh(x), expected)
    assert fresh.cshlora_config.tiers[0].name == "fine"


def test_saved_adapter_holds_only_adapter_tensors(tmp_path):
    from safetensors.torch import load_file

    model = injected()
    cshlora.save_adapter(model, tmp_path)
    keys = set(load_file(str(tmp_path / "cshlora_adapter.safetensors")))
    assert keys == {
        f"{m}.{p}"
        for m in ("q_proj", "v_proj", "up_proj", "down_proj")
        for p in ("lora_A", "lora_B", "tau", "sharpness")
    }


def test_load_rejects_an_adapter_that_does_not_fit(tmp_path):
    model = injected()
    cshlora.save_adapter(model, tmp_path / "a")
    other = cshlora.inject(TinyBlock(), CSHLoRAConfig(r=8, alpha=16, target_modules=["q_proj"]))
    with pytest.raises(ValueError, match="differs from the adapter's config"):
        cshlora.load_adapter(other, tmp_path / "a")
    small = nn.Sequential()
    small.add_module("q_proj", nn.Linear(16, 16))
    with pytest.raises(ValueError, match="does not fit the model"):
        cshlora.load_adapter(small, tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="cshlora_config.json is missing"):
        cshlora.load_adapter(TinyBlock(), tmp_path / "nothing")


def test_bucketed_and_plain_adapters_share_the_same_machinery(tmp_path):
    for gate in ("none", "bucketed"):
        model = injected(gate=gate)
        x = torch.randn(2, 16)
        cshlora.set_scale(model, torch.tensor([0.0, 2.0]))
        expected = model(x)
        cshlora.save_adapter(model, tmp_path / gate)
        fresh = copy.deepcopy(model)
        cshlora.unload_adapter(fresh)
        cshlora.load_adapter(fresh, tmp_path / gate)
        cshlora.set_scale(fresh, torch.tensor([0.0, 2.0]))
        assert torch.equal(fresh(x), expected)
        assert all(layer.gate_kind == gate for _, layer in cshlora.cshlora_layers(fresh))
        assert not hasattr(next(iter(cshlora.cshlora_layers(fresh)))[1], "tau")


def test_training_moves_thresholds():
    model = injected()
    tau0 = model.q_proj.tau.detach().clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    cshlora.set_scale(model, torch.tensor([0.3, 1.0]))
    model(torch.randn(2, 16)).square().sum().backward()
    opt.step()
    assert not torch.equal(model.q_proj.tau, tau0)
    assert isinstance(model.q_proj, CSHLoRALinear)


def _edit_adapter(path, *, config=None, tensors=None):
    """Rewrite a saved adapter with some config values and/or tensors replaced."""
    from safetensors.torch import load_file, save_file

    if config is not None:
        meta = json.loads((path / "cshlora_config.json").read_text())
        meta["config"].update(config)
        (path / "cshlora_config.json").write_text(json.dumps(meta))
    if tensors is not None:
        weights = path / "cshlora_adapter.safetensors"
        save_file({**load_file(str(weights)), **tensors}, str(weights), metadata={"format": "cshlora-adapter/1"})
    return path


@pytest.mark.parametrize("name", ["q_proj.lora_B", "v_proj.sharpness"])
def test_non_finite_adapter_tensors_are_refused(tmp_path, name):
    model = injected()
    out = cshlora.save_adapter(model, tmp_path / "a")
    bad = model.get_parameter(name).detach().clone()
    bad.view(-1)[1] = float("nan") if "lora_B" in name else float("inf")
    _edit_adapter(out, tensors={name: bad})
    fresh = TinyBlock()
    with pytest.raises(ValueError, match=rf"tensor {name} has \d NaN and \d inf"):
        cshlora.load_adapter(fresh, out)
    assert not list(cshlora.cshlora_layers(fresh))  # nothing was injected


def test_shapes_are_checked_against_the_header_before_injecting(tmp_path, monkeypatch):
    out = _edit_adapter(cshlora.save_adapter(injected(), tmp_path / "a"), config={"r": 1_000_000})
    monkeypatch.setattr(cshlora.model, "inject", lambda *a: pytest.fail("injected before comparing shapes"))
    with pytest.raises(ValueError, match=r"lora_A has shape \(8, (\d+)\) .* expect \(1000000, \1\)"):
        cshlora.load_adapter(TinyBlock(), out)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"r": "abc"}, 'r must be a positive integer, got "abc"'),
        ({"r": 2.5}, "r must be a positive integer, got 2.5"),
        ({"alpha": "abc"}, 'alpha must be a number, got "abc"'),
        ({"dropout": None}, "dropout must be a number, got null"),
        ({"learn_tau": "no"}, 'learn_tau must be true or false, got "no"'),
        ({"target_modules": ["q_proj", 5]}, "target_modules must be a list of module names"),
        ({"tiers": [{"name": "object", "size": "x", "threshold_m": 2.0}]}, "tiers must be a list of"),
        ({"bucket_edges_m": "2,30"}, "bucket_edges_m must be a list of numbers"),
        ({"gate": "sometimes"}, r"gate must be one of the registered gate kinds \(continuous, bucketed, none\)"),
        ({"colour": "red"}, "unknown CS-HLoRA config keys colour"),
    ],
)
def test_bad_adapter_configs_are_one_clear_error(tmp_path, config, message):
    out = _edit_adapter(cshlora.save_adapter(injected(), tmp_path / "a"), config=config)
    with pytest.raises(ValueError, match=message):
        cshlora.load_adapter(TinyBlock(), out)


def test_damaged_adapter_files_are_value_errors(tmp_path):
    out = cshlora.save_adapter(injected(), tmp_path / "a")
    weights = out / "cshlora_adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        cshlora.load_adapter(TinyBlock(), out)
    (out / "cshlora_config.json").write_text('{"format": "cshlora-adapter/1", "config": ')
    with pytest.raises(ValueError, match="is not valid JSON"):
        cshlora.load_adapter(TinyBlock(), out)
