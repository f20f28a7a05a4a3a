"""The one road of the GSD (scaleearth_cli.scale): parsing, the per-sample decision in log10, and the same
gate input for the same image in training and in inference."""

import math

import pytest
import torch

from scaleearth_cli.scale import GateSource, effective_log10_gsd, gsd_prompt

NAN = math.nan


@pytest.mark.parametrize(
    "text, expected",
    [("oracle", GateSource("oracle")), ("predicted", GateSource("predicted")), ("none", GateSource("none")),
     ("mixed:0.25", GateSource("mixed", 0.25)), ("noisy:0.3", GateSource("noisy", 0.3)),
     ("fixed:0.15", GateSource("fixed", 0.15))],
)  # fmt: skip
def test_parse_and_print_round_trip(text, expected):
    assert GateSource.parse(text) == expected and str(expected) == text


@pytest.mark.parametrize("bad", ["bogus", "mixed:1.5", "mixed", "noisy:-1", "noisy:nan", "fixed:0", "fixed:abc"])
def test_bad_sources_are_refused(bad):
    with pytest.raises(ValueError, match="needs a finite|must be one of"):
        GateSource.parse(bad)


def test_effective_gsd_is_the_mean_log10_over_views():
    # 0.5 m at 512 px seen as 256 px -> 1 m; a 300 px tile seen as 100 px -> 1.5 m: mean of log10
    assert effective_log10_gsd(0.5, [512, 300], [256, 100]) == pytest.approx((0.0 + math.log10(1.5)) / 2)
    assert effective_log10_gsd(None, [512], [256]) is None
    assert gsd_prompt(0.1234) == "Ground sampling distance: 0.123 m per pixel.\n"


class _Prediction:  # what sseu.SSEUPrediction offers the policy, built by hand
    def __new__(cls, mean, std):
        from sseu import SSEUPrediction

        return SSEUPrediction(torch.tensor(mean), torch.tensor(std) ** 2)


def test_decisions_by_hand():
    truth = torch.tensor([0.0, -1.0, NAN, 1.5], dtype=torch.float64)
    pred = _Prediction([0.2, -0.7, 0.4, 2.0], [0.1, 0.1, 0.1, 0.9])  # the last interval is 3.5 decades wide

    oracle = GateSource("oracle").decide(truth, pred)
    # metadata where known (hard gate: no variance), the narrow estimate for the unknown one
    assert oracle.branch == ("metadata", "metadata", "estimate", "metadata")
    torch.testing.assert_close(oracle.log10_gsd, torch.tensor([0.0, -1.0, 0.4, 1.5]))
    torch.testing.assert_close(oracle.var, torch.tensor([0.0, 0.0, 0.01, 0.0]))

    predicted = GateSource("predicted").decide(truth, pred)
    assert predicted.branch == ("estimate", "estimate", "estimate", "default")
    torch.testing.assert_close(predicted.log10_gsd, torch.tensor([0.2, -0.7, 0.4, 1.0]))  # 10 m default

    assert GateSource("none").decide(truth, pred).branch == ("default",) * 4
    fixed = GateSource("fixed", 0.15).decide(truth, pred)
    assert fixed.var is None and torch.allclose(fixed.log10_gsd, torch.full((4,), math.log10(0.15)))

    noisy = GateSource("noisy", 0.3).decide(truth[:2], None, noise=torch.tensor([0.25, -0.5], dtype=torch.float64))
    torch.testing.assert_close(noisy.log10_gsd, torch.tensor([0.25, -1.5]))


def test_mixed_draws_from_the_seeded_generator():
    truth = torch.zeros(4000, dtype=torch.float64)
    pred = _Prediction([0.7] * 4000, [0.1] * 4000)
    source = GateSource("mixed", 0.3)
    first = source.decide(truth, pred, generator=torch.Generator().manual_seed(5))
    again = source.decide(truth, pred, generator=torch.Generator().manual_seed(5))
    assert first.branch == again.branch
    share = sum(b == "estimate" for b in first.branch) / 4000
    assert 0.27 < share < 0.33
    with pytest.raises(ValueError, match="generator"):
        source.decide(truth, pred)


def test_training_and_inference_give_the_gate_the_same_input_for_the_same_image(tiny_model_dir, train_corpus):
    """One synthetic scene: its shard sample through training's collator and hook, and the same image and
    GSD through inference's answer_batch, reach cshlora.set_scale with the same value."""
    pytest.importorskip("transformers")
    from scaleearth_train_testutil import first_batches

    import cshlora
    from geoscale_vqa import geoscale_dataset
    from scaleearth_cli.inference import EvalModel, Item, answer_batch
    from scaleearth_cli.modeling import ScaleEarthVLM, adapter_config, load_vlm

    vlm, processor = load_vlm(str(tiny_model_dir))
    cshlora.inject(vlm, adapter_config("cshlora", r=4, alpha=8))
    model = ScaleEarthVLM(vlm, None, gate_gsd="oracle")
    (batch,) = first_batches(processor, train_corpus, 1, sources="synthetic", batch_size=2)
    samples = [s for _, s in zip(range(2), geoscale_dataset(train_corpus, split="train", sources="synthetic"))]

    seen = []
    original = cshlora.set_scale

    def spy(m, log10_gsd, var=None):
        seen.append(torch.as_tensor(log10_gsd).detach().double().clone())
        return original(m, log10_gsd, var)

    import scaleearth_cli.modeling as modeling

    modeling.cshlora.set_scale = spy
    try:
        model(batch)
        trained = seen[-1]
        em = EvalModel(model, processor, "tiny", None, torch.device("cpu"), "none")
        items = [Item(prompt="What is this?", images=[s["image"]], source_widths=[s["width"]], gsd_m=s["gsd_m"])
                 for s in samples]  # fmt: skip
        answers = answer_batch(em, items, GateSource("oracle"), max_new_tokens=1)
        inferred = seen[-1]
    finally:
        modeling.cshlora.set_scale = original
    torch.testing.assert_close(inferred, trained)
    assert [a.gate_log10_gsd for a in answers] == pytest.approx(trained.tolist())
    # and it is the effective GSD of the resized pixels, not the stored one
    assert trained.tolist() != pytest.approx([math.log10(s["gsd_m"]) for s in samples])
