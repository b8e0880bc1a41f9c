"""The registry: the supervised inventory (sites, works, devices) and the hazard loop."""

from registry.inventory import (
    ImportSummary,
    Inventory,
    InventoryError,
    import_inventory,
    load_inventory,
)

__all__ = ["ImportSummary", "Inventory", "InventoryError", "import_inventory", "load_inventory"]
