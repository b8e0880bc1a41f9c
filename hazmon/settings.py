"""Settings of every hazmon service, read once from `HAZMON_*` environment variables.

`Settings` is the environment's contract (one flat set of `HAZMON_*` names, documented in
docs/architecture.md); each service takes its own section (`settings.ingest`, `settings.api`,
`settings.notify`): a frozen value holding just what that service reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_LINK_SECRET_CHARS = 32
"""A link secret shorter than this is refused (HMAC-SHA256 keys: RFC 2104 §3 advises at least the
output's 32 bytes)."""
PLACEHOLDERS = frozenset({"change-me", "changeme", "changethis", "secret", "password"})


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where and as whom to connect to the MQTT broker, parsed from `mqtt://user:pass@host:port`."""

    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        """Parse an `mqtt://` URL; raise ValueError naming the expected form."""
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(
                f"HAZMON_MQTT_URL must look like mqtt://[user:pass@]host[:port], got {url!r}"
            )
        return cls(
            host=parts.hostname,
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """What an ingest worker reads (`HAZMON_*` names in docs/architecture.md, Settings)."""

    database_url: str
    mqtt: MqttEndpoint
    topic_root: str
    mqtt_client_id: str
    mqtt_session_expiry_s: int
    mqtt_keepalive_s: int
    batch_max_readings: int
    batch_max_wait_ms: int
    max_pending_messages: int
    max_pending_bytes: int
    max_payload_bytes: int
    max_readings_per_payload: int
    max_reading_age_s: int
    max_future_skew_s: int
    registry_refresh_s: float
    partition_sites: frozenset[str]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """What the HTTP API reads."""

    database_url: str
    mqtt: MqttEndpoint
    """Only for /readyz, which checks the broker answers."""
    host: str
    port: int
    max_body_bytes: int
    statement_timeout_s: float
    evidence_dir: Path
    """Where evidence files are stored, content-addressed."""
    evidence_max_bytes: int
    """The largest evidence upload (the body limit of the upload routes)."""
    link_secret: str | None = field(default=None, repr=False)
    """Checks the signed links in notifications (`/links/{token}`); None: every link is 404."""


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """What the notifier reads.

    Attributes:
        link_secret: signs the links in messages; None: messages carry no links.
        public_base_url: where phones reach the API (links are `{base}/links/{token}`).
        link_ttl_s: a link's lifetime from its message, s.
        timeout_s: each webhook request's connect, write and read timeout, s.
        time_zone: the IANA zone times are shown in.
    """

    database_url: str
    link_secret: str | None = field(default=None, repr=False)
    public_base_url: str = "http://127.0.0.1:8000"
    link_ttl_s: int = 7 * 24 * 3600
    timeout_s: float = 10.0
    time_zone: str = "Asia/Shanghai"


class Settings(BaseSettings):
    """All settings, with working defaults for the local services (scripts/services.sh)."""

    model_config = SettingsConfigDict(env_prefix="HAZMON_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/hazmon"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    topic_root: str = Field(
        default="hazmon/v1", description="topics are {root}/{site}/{device}/..."
    )
    log_level: str = "INFO"

    # ingest
    mqtt_client_id: str = "hazmon-ingest-0"
    mqtt_session_expiry_s: int = 7 * 24 * 3600
    mqtt_keepalive_s: int = 30
    batch_max_readings: int = Field(default=5000, ge=1)
    batch_max_wait_ms: int = Field(default=100, ge=1)
    max_pending_messages: int = Field(default=2000, ge=1, le=65535)
    max_pending_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="payload bytes ingest holds unacknowledged at most (one larger message "
        "passes alone); with max_pending_messages, what bounds ingest's memory",
    )
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    max_readings_per_payload: int = Field(default=1000, ge=1)
    max_reading_age_s: int = Field(default=30 * 24 * 3600, ge=1)
    max_future_skew_s: int = Field(default=300, ge=0)
    registry_refresh_s: float = Field(default=5.0, gt=0)
    site_partition: str = Field(
        default="",
        description="comma-separated site codes this ingest worker owns; empty = all sites",
    )

    # api
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="larger request bodies are refused with 413"
    )
    api_statement_timeout_s: float = Field(
        default=30.0, gt=0, description="an API query running longer is cancelled (503)"
    )

    # notify: the links in messages (hazmon/links.py) and how messages show times
    link_secret: SecretStr | None = Field(
        default=None,
        exclude=True,  # never in a dump of the settings (logs, a child process's environment)
        description="HMAC key of the signed links in notifications (the notifier signs, the API "
        "checks); unset: messages carry no links",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="where phones reach the API: links are {base}/links/{token}",
    )
    link_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=60, le=90 * 24 * 3600, description="a link's lifetime, s"
    )
    notify_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="each webhook request's connect, write and read timeout, s (lease: 3 x)",
    )
    notify_time_zone: str = Field(
        default="Asia/Shanghai", description="the time zone of times in messages (IANA name)"
    )

    @field_validator("notify_time_zone")
    @classmethod
    def _check_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"HAZMON_NOTIFY_TIME_ZONE: unknown time zone {value!r}") from None
        return value

    @field_validator("link_secret", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value  # `HAZMON_LINK_SECRET=` (compose's default)

    @model_validator(mode="after")
    def _check_link_secret(self) -> Self:
        # STYLE.md: no usable default for a secret, and no placeholder accepted
        if self.link_secret is not None:
            secret = self.link_secret.get_secret_value()
            if len(secret) < MIN_LINK_SECRET_CHARS or secret.lower() in PLACEHOLDERS:
                raise ValueError(
                    "HAZMON_LINK_SECRET must be a random value of at least "
                    f"{MIN_LINK_SECRET_CHARS} characters"
                )
        return self

    # evidence files (photos, PDFs) of the hazard loop
    evidence_dir: Path = Field(
        default=Path("var/evidence"),
        description="where evidence files are stored, content-addressed by SHA-256",
    )
    evidence_max_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="larger evidence uploads are refused with 413",
    )

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str) -> str:
        MqttEndpoint.parse(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"HAZMON_DATABASE_URL must be a postgresql:// URL, got {value.split('@')[-1]!r}"
            )
        return value

    @property
    def mqtt(self) -> MqttEndpoint:
        """The broker endpoint."""
        return MqttEndpoint.parse(self.mqtt_url)

    @property
    def partition_sites(self) -> frozenset[str]:
        """Site codes this worker owns; empty means every site."""
        return frozenset(code.strip() for code in self.site_partition.split(",") if code.strip())

    @property
    def ingest(self) -> IngestSettings:
        """The ingest worker's section."""
        return IngestSettings(
            database_url=self.database_url,
            mqtt=self.mqtt,
            topic_root=self.topic_root,
            mqtt_client_id=self.mqtt_client_id,
            mqtt_session_expiry_s=self.mqtt_session_expiry_s,
            mqtt_keepalive_s=self.mqtt_keepalive_s,
            batch_max_readings=self.batch_max_readings,
            batch_max_wait_ms=self.batch_max_wait_ms,
            max_pending_messages=self.max_pending_messages,
            max_pending_bytes=self.max_pending_bytes,
            max_payload_bytes=self.max_payload_bytes,
            max_readings_per_payload=self.max_readings_per_payload,
            max_reading_age_s=self.max_reading_age_s,
            max_future_skew_s=self.max_future_skew_s,
            registry_refresh_s=self.registry_refresh_s,
            partition_sites=self.partition_sites,
        )

    @property
    def api(self) -> ApiSettings:
        """The HTTP API's section."""
        return ApiSettings(
            database_url=self.database_url,
            mqtt=self.mqtt,
            host=self.api_host,
            port=self.api_port,
            max_body_bytes=self.api_max_body_bytes,
            statement_timeout_s=self.api_statement_timeout_s,
            link_secret=self._link_secret,
            evidence_dir=self.evidence_dir,
            evidence_max_bytes=self.evidence_max_bytes,
        )

    @property
    def notify(self) -> NotifySettings:
        """The notifier's section."""
        return NotifySettings(
            database_url=self.database_url,
            link_secret=self._link_secret,
            public_base_url=self.public_base_url,
            link_ttl_s=self.link_ttl_s,
            timeout_s=self.notify_timeout_s,
            time_zone=self.notify_time_zone,
        )

    @property
    def _link_secret(self) -> str | None:
        return None if self.link_secret is None else self.link_secret.get_secret_value()
