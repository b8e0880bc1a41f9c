"""The registry: the supervised inventory (sites, works, devices) and the hazard loop."""

from registry import alerts
from registry.hazards import (
    HAZARD_STATES,
    Change,
    Hazard,
    HazardAction,
    HazardError,
    HazardLevel,
    HazardState,
)
from registry.inventory import (
    ImportSummary,
    Inventory,
    InventoryError,
    import_inventory,
    load_inventory,
)

__all__ = [
    "HAZARD_STATES",
    "Change",
    "Hazard",
    "HazardAction",
    "HazardError",
    "HazardLevel",
    "HazardState",
    "ImportSummary",
    "Inventory",
    "InventoryError",
    "alerts",
    "import_inventory",
    "load_inventory",
]
