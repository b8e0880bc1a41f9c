"""API tokens for tests, issued straight into a test's database."""

from __future__ import annotations

from datetime import UTC, datetime

from hazmon.auth import Role, create_token, grant
from hazmon.db import connect


def issue(
    db_url: str,
    role: Role = "admin",
    *,
    region: str = "",
    enterprise: str = "",
    site_id: int | None = None,
    expires_days: int = 1,
) -> str:
    """Create a token with `role` and scope in the database at `db_url`; return the secret."""
    new = grant(
        name=f"test-{role}",
        role=role,
        expires_days=expires_days,
        now=datetime.now(UTC),
        region=region,
        enterprise=enterprise,
        site_id=site_id,
    )
    with connect(db_url) as conn:
        create_token(conn, new)
    return new.token


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}
