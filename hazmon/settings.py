"""Settings of every hazmon service, read once from `HAZMON_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
