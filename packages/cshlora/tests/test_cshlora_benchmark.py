"""One training step of CS-HLoRA vs PEFT's LoRA on the same CPU shapes (pytest-benchmark).

CI runs each benchmark once as a smoke test (``--benchmark-disable`` in the root config). To time:

    uv run python tools/bench_cpu_step.py          # prints ratios, writes benchmarks/results/
"""

import pytest
import torch
from torch import nn

from cshlora import CSHLoRAConfig, CSHLoRALinear

peft = pytest.importorskip("peft")
from peft.tuners.lora.layer import Linear as PeftLinear  # noqa: E402

D, BATCH, TOKENS, R = 1024, 4, 256, 64


def _step_fn(layer, forward):
    torch.manual_seed(0)
    # The input needs a gradient, as it does for every adapted layer but the first in a real model.
    x = torch.randn(BATCH, TOKENS, D, requires_grad=True)
    params = [p for p in layer.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        x.grad = None
        forward(x).float().square().mean().backward()
        opt.step()

    return step


def _base():
    torch.manual_seed(0)
    base = nn.Linear(D, D)
    base.requires_grad_(False)
    return base


def _cshlora(gate="continuous"):
    layer = CSHLoRALinear(_base(), CSHLoRAConfig(r=R, alpha=32, gate=gate))
    nn.init.normal_(layer.lora_B, std=0.01)
    return layer


@pytest.mark.benchmark(group="train-step-cpu")
def test_bench_peft_lora_step(benchmark):
    layer = PeftLinear(_base(), "default", config=peft.LoraConfig(r=R, lora_alpha=32), r=R, lora_alpha=32)
    benchmark(_step_fn(layer, layer))


@pytest.mark.benchmark(group="train-step-cpu")
def test_bench_cshlora_step(benchmark):
    layer = _cshlora()
    s = torch.linspace(-1, 2, BATCH)
    benchmark(_step_fn(layer, lambda x: layer(x, log10_gsd=s)))


@pytest.mark.benchmark(group="train-step-cpu")
def test_bench_cshlora_uncertain_step(benchmark):
    layer = _cshlora()
    s, var = torch.linspace(-1, 2, BATCH), torch.full((BATCH,), 0.2)
    benchmark(_step_fn(layer, lambda x: layer(x, log10_gsd=s, var=var)))


@pytest.mark.benchmark(group="train-step-cpu")
def test_bench_plain_lora_step(benchmark):
    layer = _cshlora(gate="none")
    benchmark(_step_fn(layer, layer))


@pytest.mark.benchmark(group="train-step-cpu")
def test_bench_frozen_base_step(benchmark):
    base = _base()
    w = nn.Parameter(torch.zeros(1))  # something for the optimizer; the base itself is frozen

    def forward(x):
        return base(x) + w

    benchmark(_step_fn(nn.ParameterList([w]), forward))
