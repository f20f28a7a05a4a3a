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


def _rewrite(path, *, config=None, tensors=None):
    """The head file at ``path`` with its config and/or some tensors replaced (header metadata kept)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    if config is not None:
        meta = {**meta, "config": json.dumps({**json.loads(meta["config"]), **config})}
    save_file({**state, **(tensors or {})}, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    path = save_head(SSEUHead(4, hidden=8), tmp_path / "h.safetensors")
    weight = torch.zeros(2, 8)
    weight[1, 3] = bad
    _rewrite(path, tensors={"mlp.3.weight": weight})
    with pytest.raises(ValueError, match=r"tensor mlp.3.weight must be finite"):
        load_head(path)


def test_shapes_are_compared_with_the_header_before_anything_is_allocated(tmp_path):
    path = save_head(SSEUHead(4, hidden=8), tmp_path / "h.safetensors")
    # Built for real, this config would need 4e18 bytes; it must be refused from the header's shapes.
    _rewrite(path, config={"in_features": 10**9, "hidden": 10**9})
    with pytest.raises(ValueError, match=r"tensor \S+ has shape \(\d+,( \d+)?\), the head config implies"):
        load_head(path)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"hidden": "abc"}, 'hidden must be a positive integer, got "abc"'),
        ({"hidden": 2.5}, "hidden must be a positive integer, got 2.5"),
        ({"in_features": True}, "in_features must be a positive integer, got true"),
        ({"pooling": "max"}, "pooling must be 'attention' or 'mean'"),
        ({"input_norm": "no"}, 'input_norm must be true or false, got "no"'),
        ({"min_std": None}, "min_std must be a finite number, got null"),
        ({"init_std": 10.0}, "invalid head config .*init_std"),
        ({"colour": 1}, "unknown head config keys colour"),
    ],
)
def test_bad_head_configs_are_one_clear_error(tmp_path, config, message):
    path = _rewrite(save_head(SSEUHead(4, hidden=8), tmp_path / "h.safetensors"), config=config)
    with pytest.raises(ValueError, match=message):
        load_head(path)


def test_truncated_and_garbage_files_are_value_errors(tmp_path):
    path = save_head(SSEUHead(4, hidden=8), tmp_path / "h.safetensors")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_head(path)
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_head(path)
