"""The HTTP API (FastAPI): resources, auth, /healthz, /metrics."""

from api.app import create_app

__all__ = ["create_app"]
