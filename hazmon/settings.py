"""Settings of every hazmon service, read once from `HAZMON_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Self
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_LINK_SECRET = "development-only-link-secret-change-me"  # noqa: S105 (a placeholder)
"""The link secret outside production: refused when `HAZMON_ENVIRONMENT=production`."""
DEVELOPMENT_BASE_URL = "http://127.0.0.1:8000"
MIN_LINK_SECRET_CHARS = 32


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


class Settings(BaseSettings):
    """All settings, with working defaults for the local services (scripts/services.sh)."""

    model_config = SettingsConfigDict(env_prefix="HAZMON_", extra="ignore")

    environment: Literal["development", "production"] = "development"
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
    link_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_LINK_SECRET),
        description="HMAC key of the signed links in notifications; required in production",
    )
    public_base_url: str = Field(
        default=DEVELOPMENT_BASE_URL,
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

    @model_validator(mode="after")
    def _check_production_links(self) -> Self:
        # STYLE.md: secrets have no usable default outside development
        if self.environment == "production":
            secret = self.link_secret.get_secret_value()
            if secret == DEVELOPMENT_LINK_SECRET or len(secret) < MIN_LINK_SECRET_CHARS:
                raise ValueError(
                    "HAZMON_LINK_SECRET must be a random value of at least "
                    f"{MIN_LINK_SECRET_CHARS} characters in production"
                )
            if self.public_base_url == DEVELOPMENT_BASE_URL:
                raise ValueError("HAZMON_PUBLIC_BASE_URL must be set in production")
        return self

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
