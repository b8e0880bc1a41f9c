"""hazmon core: settings, database access and migrations, the catalogue of hazard kinds, the CLI."""

__version__ = "0.1.0"
