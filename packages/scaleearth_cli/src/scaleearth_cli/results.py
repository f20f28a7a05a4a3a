"""A typed view of one evaluation's ``results.json``: what the CLI, ``quickstart`` and ``ablate`` read.

The public benchmarks keep their own metric names (XLRS micro/macro, RSVQA OA/AA, OmniEarth L1...) in
``raw["metrics"]``; :attr:`EvalResult.scores` is the GeoScale accuracy (overall, per tier, per type).

``results.json`` stays the file format (and the benchmark scorers' own keys); code that needs numbers from
it reads them through :class:`EvalResult` so the nested keys are spelled in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Scores:
    """Accuracy overall, mean over tiers, per tier and per question type ({type: (n, accuracy)})."""

    accuracy: float
    tier_mean: float | None
    tiers: dict[str, float] = field(default_factory=dict)
    types: dict[str, tuple[int, float]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, block: dict) -> Scores:
        groups = block.get("groups") or {}
        return cls(
            accuracy=block["metrics"]["overall"],
            tier_mean=block["metrics"].get("tier_mean"),
            tiers={t: g["accuracy"] for t, g in (groups.get("tier") or {}).items()},
            types={t: (g["n"], g["accuracy"]) for t, g in (groups.get("type") or {}).items()},
        )


@dataclass(frozen=True)
class SSEUScores:
    mae_log10: float
    mae_m: float | None
    coverage_90: float | None
    coverage_95: float | None
    calibration_plot: Path | None


@dataclass(frozen=True)
class EvalResult:
    questions: int
    scores: Scores | None  # GeoScale splits (accuracy per tier and type); None for the public benchmarks
    prior: Scores | None  # the blind prior of the same questions (GeoScale splits)
    prior_definition: str | None
    branches: dict[str, int]  # where the gate's GSD came from: metadata / estimate / default
    gsd_note: str
    sseu: SSEUScores | None
    raw: dict  # the whole results.json

    @classmethod
    def from_dict(cls, results: dict) -> EvalResult:
        prior = results.get("blind_prior")
        sseu = results.get("sseu")
        metrics = (sseu or {}).get("metrics") or {}
        gsd = (results.get("run") or {}).get("gsd") or {}
        return cls(
            questions=results["counts"]["questions"],
            scores=Scores.from_dict(results) if "overall" in results.get("metrics", {}) else None,
            prior=Scores.from_dict(prior) if prior else None,
            prior_definition=prior.get("definition") if prior else None,
            branches=dict(gsd.get("branches") or {}),
            gsd_note=gsd.get("note") or "",
            sseu=SSEUScores(
                metrics["mae_log10"],
                metrics.get("mae_m"),
                metrics.get("coverage_90"),
                metrics.get("coverage_95"),
                Path(sseu["calibration_plot"]) if sseu.get("calibration_plot") else None,
            )
            if metrics
            else None,  # fmt: skip
            raw=results,
        )

    @classmethod
    def read(cls, folder) -> EvalResult:
        import json

        return cls.from_dict(json.loads((Path(folder) / "results.json").read_text()))
