"""The registry: the supervised inventory (sites, works, devices) and the hazard loop."""

from hazmon.vocabulary import HAZARD_STATES, HazardAction, HazardLevel, HazardState
from registry import alerts, hazard_store, lifecycle
from registry.hazard_store import HazardStore, NewHazard
from registry.inventory import (
    ImportSummary,
    Inventory,
    InventoryError,
    import_inventory,
    load_inventory,
)
from registry.lifecycle import Actor, Change, Hazard, HazardError, Plan

__all__ = [
    "HAZARD_STATES",
    "Actor",
    "Change",
    "Hazard",
    "HazardAction",
    "HazardError",
    "HazardLevel",
    "HazardState",
    "HazardStore",
    "ImportSummary",
    "Inventory",
    "InventoryError",
    "NewHazard",
    "Plan",
    "alerts",
    "hazard_store",
    "import_inventory",
    "lifecycle",
    "load_inventory",
]
