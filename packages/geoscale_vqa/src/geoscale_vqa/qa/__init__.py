"""Scale-layered QA: the tier rule for source QA, GSD-conditioned templates, and the teacher backend."""

from .templates import template_qa
from .tiers import TIER_MAX_GSD_M, source_tier, visible_tiers

__all__ = ["TIER_MAX_GSD_M", "source_tier", "template_qa", "visible_tiers"]
