import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from sseu import SSEUHead, load_head, save_head


def test_round_trip_restores_config_weights_and_outputs(tmp_path):
    torch.manual_seed(0)
    head = SSEUHead(12, hidden=20, pooling="mean", init_mean=0.25, init_std=0.4, min_std=0.02)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn_like(p))
    path = save_head(head, tmp_path / "heads" / "sseu.safetensors")

    # A safetensors file starts with a little-endian u64 header length and a JSON header: no pickle.
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"]["format"] == "sseu-head/1"

    loaded = load_head(path)
    assert loaded.config == head.config
    assert loaded.pooling == "mean" and loaded.score is None
    for key, value in head.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randn(3, 5, 12)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 1, 0]])
    a, b = head(x, mask), loaded(x, mask)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.var, b.var)


def test_loading_a_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not an SSE-U head file"):
        load_head(path)
