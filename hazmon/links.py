"""Signed, expiring links in notifications: one alert or hazard, one subscription, one expiry.

A chat message on an inspector's phone carries a URL `{HAZMON_PUBLIC_BASE_URL}/links/{token}`
that opens the alert (or hazard) it is about and lets the recipient acknowledge it without an
API token. The token is its own authority, so it says exactly what it grants and is signed:

    v1.a17.3.1772357400.<signature>
       │ │   │ └─ expiry, epoch seconds (the link works until then)
       │ │   └─ subscription id (the acknowledgement acts as "link:<subscription name>")
       │ └─ scope and subject: `a` + alert id, or `h` + hazard id
       └─ format version

`signature` is the first 16 bytes (128 bits) of HMAC-SHA256(HAZMON_LINK_SECRET,
"hazmon-link.v1.a17.3.1772357400"), base64url without padding: a link cannot be widened to another
alert, another subscription or a later expiry without the secret. Changing the secret revokes
every link sent. Pure: the notifier mints links (`notify.formats`), the API reads them
(`api/routes/links.py`); neither imports the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

LinkScope = Literal["alert", "hazard"]
LinkProblem = Literal["malformed", "forged", "expired"]

VERSION = "v1"
SIGNATURE_BYTES = 16
"""HMAC-SHA256 truncated to 128 bits (RFC 2104 §5 allows truncation to at least half the
output): short enough for a phone URL, far beyond guessing."""
MAX_TOKEN_CHARS = 96
"""No token minted here is longer (ids to 19 digits): anything longer is refused unread."""
_SCOPE_CODES: dict[LinkScope, str] = {"alert": "a", "hazard": "h"}
_SCOPES = {code: scope for scope, code in _SCOPE_CODES.items()}
_TOKEN = re.compile(
    r"v1\.(?P<scope>[ah])(?P<subject>[1-9][0-9]{0,18})\.(?P<sub>[1-9][0-9]{0,9})"
    r"\.(?P<exp>[1-9][0-9]{0,11})\.(?P<sig>[A-Za-z0-9_-]{22})"
)


class LinkError(ValueError):
    """A token that grants nothing: `problem` says why (malformed, forged or expired)."""

    def __init__(self, problem: LinkProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Link:
    """What a link grants: one subject (alert or hazard) to one subscription until `expires_s`.

    Attributes:
        scope: `alert` or `hazard`.
        subject_id: `alerts.id` or `hazards.id`.
        subscription_id: `webhook_subscriptions.id` of the message it was sent in.
        expires_s: the expiry, epoch seconds.
    """

    scope: LinkScope
    subject_id: int
    subscription_id: int
    expires_s: int

    def __post_init__(self) -> None:
        if self.subject_id < 1 or self.subscription_id < 1 or self.expires_s < 1:
            raise ValueError(f"a link needs positive ids and expiry, got {self}")


@dataclass(frozen=True, slots=True)
class LinkSigner:
    """Mints link URLs: the secret, the public base URL and how long a link lasts.

    Attributes:
        secret: HAZMON_LINK_SECRET.
        base_url: HAZMON_PUBLIC_BASE_URL, where the API is reached from a phone.
        ttl_s: HAZMON_LINK_TTL_S, a link's lifetime from the message's time, s.
    """

    secret: str
    base_url: str
    ttl_s: int

    def url(self, scope: LinkScope, subject_id: int, subscription_id: int, issued_s: float) -> str:
        """The link URL for one subject, valid `ttl_s` after `issued_s` (epoch s).

        The expiry is derived from the issue time, so a message sent again after a failure
        carries the same links byte for byte.
        """
        link = Link(scope, subject_id, subscription_id, int(issued_s) + self.ttl_s)
        return f"{self.base_url.rstrip('/')}/links/{sign_link(self.secret, link)}"


def sign_link(secret: str, link: Link) -> str:
    """The token of `link`, signed with `secret`."""
    body = f"{VERSION}.{_SCOPE_CODES[link.scope]}{link.subject_id}.{link.subscription_id}.{link.expires_s}"
    return f"{body}.{_signature(secret, body)}"


def read_link(secret: str, token: str, now_s: float) -> Link:
    """The link a token grants, checked: well formed, signed with `secret`, not expired.

    The signature is checked before the expiry, so an expired link is one that was genuinely
    sent (the API answers it differently from a forged one).

    Raises:
        LinkError: `malformed` (not a token), `forged` (wrong signature), `expired`.
    """
    match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_CHARS else None
    if match is None:
        raise LinkError("malformed", "not a hazmon link")
    body = token.rsplit(".", 1)[0]
    if not hmac.compare_digest(_signature(secret, body), match["sig"]):
        raise LinkError("forged", "the link's signature does not match")
    link = Link(
        _SCOPES[match["scope"]], int(match["subject"]), int(match["sub"]), int(match["exp"])
    )
    if now_s >= link.expires_s:
        raise LinkError("expired", "the link has expired")
    return link


def _signature(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"hazmon-link.{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode().rstrip("=")
