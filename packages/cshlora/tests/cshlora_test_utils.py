import torch
from torch import nn


class TinyBlock(nn.Module):
    """A decoder-like block with the projection names CS-HLoRA targets by default."""

    def __init__(self, d=16, hidden=24):
        super().__init__()
        self.q_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.up_proj = nn.Linear(d, hidden)
        self.down_proj = nn.Linear(hidden, d)
        self.head = nn.Linear(d, 3)  # not a target

    def forward(self, x):
        x = x + self.v_proj(torch.tanh(self.q_proj(x)))
        x = x + self.down_proj(torch.relu(self.up_proj(x)))
        return self.head(x)


def randomize_adapter(model, seed=0):
    """Give every adapter tensor a non-trivial value (B starts at zero, tau at the tier defaults)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(k in name for k in ("lora_B", "lora_A")):
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) * 0.3)
            elif "tau" in name:
                p.copy_(torch.empty(p.shape, dtype=torch.float64).uniform_(-1, 2, generator=g).to(p.dtype))
            elif "sharpness" in name:
                p.copy_(torch.empty(p.shape, dtype=torch.float64).uniform_(1, 6, generator=g).to(p.dtype))
