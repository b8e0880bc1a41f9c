"""Rule engine: graded alerts for major-hazard works, evaluated on whole batches with numpy.

Pure logic: numpy, the standard library and YAML only; the database adapter is
`hazmon.alertstore`. See docs/rules.md for the rule model.
"""

from rules.engine import Baseline, Engine, Override
from rules.profiles import Profile, ResolvedRule, load_profiles
from rules.types import Batch, Grade, ProfileError, RulesError, SeriesInfo, Transition

__all__ = [
    "Baseline",
    "Batch",
    "Engine",
    "Grade",
    "Override",
    "Profile",
    "ProfileError",
    "ResolvedRule",
    "RulesError",
    "SeriesInfo",
    "Transition",
    "load_profiles",
]
