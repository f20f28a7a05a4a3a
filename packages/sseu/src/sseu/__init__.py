"""SSE-U: predict log10 ground sampling distance and its uncertainty from visual features.

Lets a scale-conditioned model run without GSD metadata: :class:`SSEUHead` maps visual features
to a Gaussian over ``log10(GSD / 1 m)``, trained with :func:`beta_nll_loss`;
:func:`resolve_scale` decides per sample between metadata, the estimate and a neutral default.
"""

from ._version import __version__ as __version__
from .fit import FitReport, HeadInputs, fit_head, head_predictions
from .gsd import (
    NEUTRAL_LOG10_GSD,
    PLAUSIBLE_GSD_M,
    ImplausibleGSDWarning,
    gsd_m_from_log10,
    log10_gsd_from_metres,
)
from .head import MAX_STD_LOG10, MIN_STD_LOG10, SSEUHead, SSEUPrediction
from .losses import beta_nll_loss, gaussian_nll_loss, sseu_loss
from .metrics import (
    CalibrationSummary,
    calibration_summary,
    interval_coverage,
    mae_log10,
    mae_m,
    mean_gaussian_nll,
    median_relative_error_m,
    sseu_metrics,
)
from .noise import perturb_log10_gsd, spoof_log10_gsd
from .plots import plot_calibration
from .policy import ScaleDecision, resolve_scale
from .serialization import load_head, save_head
from .spectrum import scale_spectrum, spectrum_size

__all__ = [
    "MAX_STD_LOG10",
    "MIN_STD_LOG10",
    "NEUTRAL_LOG10_GSD",
    "PLAUSIBLE_GSD_M",
    "CalibrationSummary",
    "FitReport",
    "HeadInputs",
    "ImplausibleGSDWarning",
    "SSEUHead",
    "SSEUPrediction",
    "ScaleDecision",
    "beta_nll_loss",
    "calibration_summary",
    "fit_head",
    "gaussian_nll_loss",
    "gsd_m_from_log10",
    "head_predictions",
    "interval_coverage",
    "load_head",
    "log10_gsd_from_metres",
    "mae_log10",
    "mae_m",
    "mean_gaussian_nll",
    "median_relative_error_m",
    "perturb_log10_gsd",
    "plot_calibration",
    "resolve_scale",
    "save_head",
    "scale_spectrum",
    "sseu_loss",
    "sseu_metrics",
    "spectrum_size",
    "spoof_log10_gsd",
]
