"""Rule engine: graded alerts for major-hazard works, evaluated on whole batches with numpy.

Pure logic: numpy, the standard library and YAML only; the database adapter is ingest's
(`ingest.alerts`). See docs/rules.md for the rule model.
"""

from hazmon.vocabulary import Grade
from rules.engine import Engine
from rules.profiles import Profile, load_profiles, shipped_profiles
from rules.resolve import ResolvedRule, SeriesRules, check_work, resolve_rules, resolve_series
from rules.types import (
    Batch,
    Override,
    ProfileError,
    RulesError,
    SeriesInfo,
    Transition,
)

__all__ = [
    "Batch",
    "Engine",
    "Grade",
    "Override",
    "Profile",
    "ProfileError",
    "ResolvedRule",
    "RulesError",
    "SeriesInfo",
    "SeriesRules",
    "Transition",
    "check_work",
    "load_profiles",
    "resolve_rules",
    "resolve_series",
    "shipped_profiles",
]
