"""Device models and scenarios that publish like real site gateways."""

from simulators.crane import CraneSample, CraneSpec, crane_lifts
from simulators.excavation import wall_top_drift
from simulators.publisher import GatewayPublisher, publish_series

__all__ = [
    "CraneSample",
    "CraneSpec",
    "GatewayPublisher",
    "crane_lifts",
    "publish_series",
    "wall_top_drift",
]
