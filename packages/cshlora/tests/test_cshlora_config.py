import math

import pytest

from cshlora import CSHLoRAConfig, Tier


def test_default_tiers_are_the_papers_rank_ranges():
    cfg = CSHLoRAConfig()
    assert cfg.r == 64 and cfg.alpha == 32 and cfg.dropout == 0.0
    assert cfg.tier_slices() == {"object": slice(0, 11), "structure": slice(11, 32), "semantic": slice(32, 64)}
    taus = [t.tau for t in cfg.tiers]
    assert taus == pytest.approx([math.log10(2), math.log10(30), 3.0])
    assert cfg.scaling == 0.5


@pytest.mark.parametrize("r", [3, 4, 8, 16, 32, 128])
def test_tier_sizes_cover_every_rank_once(r):
    sizes = CSHLoRAConfig(r=r).tier_sizes()
    assert sum(sizes) == r and min(sizes) >= 1
    # proportional to 11:21:32 within one rank
    for size, share in zip(sizes, (11, 21, 32)):
        assert abs(size - r * share / 64) <= 1


def test_bucket_sizes_split_evenly():
    assert CSHLoRAConfig(gate="bucketed").bucket_sizes() == [21, 22, 21]
    assert sum(CSHLoRAConfig(r=8, gate="bucketed", bucket_edges_m=(1.0,)).bucket_sizes()) == 8


def test_json_round_trip_keeps_everything():
    cfg = CSHLoRAConfig(
        r=16,
        alpha=8,
        tiers=(Tier("fine", 1, 0.5, 6.0), Tier("coarse", 3, 100.0)),
        target_modules=["q_proj"],
        exclude_modules="visual.*",
        learn_tau=False,
        default_log10_gsd=1.0,
    )
    back = CSHLoRAConfig.from_json(cfg.to_json())
    assert back == cfg


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"r": 0}, "r must be a positive integer"),
        ({"alpha": -1}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"gate": "hard"}, "gate must be"),
        ({"backend": "cuda"}, "backend must be"),
        ({"gate": "bucketed", "bucket_edges_m": (10.0, 2.0)}, "strictly increasing"),
        ({"gate": "bucketed", "bucket_edges_m": (0.0,)}, "metres > 0"),
        ({"default_log10_gsd": float("nan")}, "default_log10_gsd"),
        ({"r": 2}, "smaller than the number of tiers"),
    ],
)
def test_bad_config_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CSHLoRAConfig(**kwargs)


@pytest.mark.parametrize("threshold", [0.0, -1.0, float("inf"), float("nan")])
def test_tier_threshold_must_be_positive_metres(threshold):
    with pytest.raises(ValueError, match="threshold_m"):
        Tier("x", 1, threshold)


def test_unknown_field_in_saved_config_is_rejected():
    with pytest.raises(ValueError, match="unknown CSHLoRAConfig fields"):
        CSHLoRAConfig.from_dict({"r": 8, "rank_dropout": 0.1})


def test_target_matching_follows_peft_rules():
    cfg = CSHLoRAConfig(target_modules=["q_proj", "mlp.up_proj"], exclude_modules=["visual.blocks.0.q_proj"])
    assert cfg.matches("model.layers.0.self_attn.q_proj")
    assert cfg.matches("q_proj")
    assert not cfg.matches("model.layers.0.self_attn.qq_proj")
    assert cfg.matches("layers.1.mlp.up_proj")
    assert not cfg.matches("visual.blocks.0.q_proj")
    regex = CSHLoRAConfig(target_modules=r".*language_model.*\.(q|v)_proj")
    assert regex.matches("model.language_model.layers.3.self_attn.v_proj")
    assert not regex.matches("model.visual.blocks.3.attn.v_proj")


def test_backend_env_override(monkeypatch):
    cfg = CSHLoRAConfig(backend="auto")
    monkeypatch.setenv("CSHLORA_BACKEND", "torch")
    assert cfg.resolved_backend() == "torch"
    monkeypatch.setenv("CSHLORA_BACKEND", "fast")
    with pytest.raises(ValueError, match="CSHLORA_BACKEND"):
        cfg.resolved_backend()
