"""Save and load an :class:`SSEUHead` as one safetensors file (weights + JSON config, no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from .head import SSEUHead

FORMAT = "sseu-head/1"


def save_head(head: SSEUHead, path: str | Path) -> Path:
    """Write the head's weights and constructor arguments to ``path`` (a ``.safetensors`` file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    save_file(state, str(path), metadata={"format": FORMAT, "config": json.dumps(head.config)})
    return path


def load_head(path: str | Path, device: str = "cpu") -> SSEUHead:
    """Rebuild the head saved by :func:`save_head`; raises ``ValueError`` for other files."""
    with safe_open(str(path), framework="pt", device=device) as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not an SSE-U head file (format {meta.get('format')!r}, want {FORMAT!r})")
        state = {k: f.get_tensor(k) for k in f.keys()}
    head = SSEUHead(**json.loads(meta["config"]))
    head.load_state_dict(state, strict=True)
    return head.to(device)
