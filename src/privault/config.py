"""Settings, read from the environment (prefix ``PRIVAULT_``) and validated at start."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_POLICY = Path(__file__).resolve().parents[2] / "policies" / "kallu.toml"


class Settings(BaseSettings):
    """Where data lives and how the service runs."""

    model_config = SettingsConfigDict(
        env_prefix="PRIVAULT_", env_nested_delimiter="__", frozen=True
    )

    data_dir: Path = Field(
        default=Path("var"),
        description="Folder holding the SQLite file, the keyring and the maildir.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL; SQLite in the data folder when unset. "
        "Use postgresql+psycopg://... for PostgreSQL.",
    )
    policy_file: Path = Field(
        default=REPO_POLICY,
        description="The policy file loaded by `init` when the database holds no policy yet.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public address of the service, used in links sent by mail.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted, in bytes."
    )
    session_days: int = Field(default=14, ge=1, le=365, description="Lifetime of a login session.")
    argon2_time_cost: int = Field(
        default=3, ge=1, le=20, description="Argon2id passes over memory when hashing a password."
    )
    argon2_memory_kib: int = Field(
        default=65536, ge=1024, description="Argon2id memory per password hash, in KiB."
    )
    worker_interval: float = Field(
        default=5.0, gt=0, le=3600, description="Seconds between two rounds of the sweeps."
    )
    outbox_lease: float = Field(
        default=600.0,
        gt=0,
        le=86400,
        description="Seconds a sweep may take to send a mail it claimed; a mail left claimed "
        "by a worker that died is sent by another sweep after this.",
    )
    policy_check_interval: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds between two looks, by a running server or worker, at which "
        "policy version is in force: a version published for a later date is used from then.",
    )
    log_json: bool = Field(default=False, description="Write logs as JSON lines.")
    mail_from: str = Field(
        default="Kallu <no-reply@kallu.cc>", description="From address of mail the service sends."
    )

    smtp_host: str | None = Field(
        default=None,
        description="Relay for outgoing mail; unset, mail goes to the maildir in the data folder.",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Port of the relay.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (upgrade a plain connection, port 587), tls (implicit TLS, "
        "port 465) or none (a relay on localhost only).",
    )
    smtp_username: str | None = Field(default=None, description="Login at the relay, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="Password at the relay.")
    smtp_password_file: Path | None = Field(
        default=None, description="A file holding the relay's password (instead of the value)."
    )
    database_url_file: Path | None = Field(
        default=None, description="A file holding the database URL (instead of the value)."
    )
    smtp_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Seconds before a relay is given up on."
    )
    intake_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the SMTP intake for the privacy address; `serve` starts it when "
        "set, `privault mail serve` in any case.",
    )
    intake_host: str = Field(default="127.0.0.1", description="Address the SMTP intake binds.")
    intake_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest message the intake accepts."
    )
    intake_per_hour: int = Field(
        default=20, ge=1, description="Messages one sender (address or host) may send per hour."
    )
    trusted_authserv_ids: list[str] = Field(
        default_factory=list,
        description="authserv-ids of our own MTA: its Authentication-Results header (topmost) "
        "is believed when it says DMARC passed.",
    )
    geoip_csv: Path | None = Field(
        default=None,
        description="IP-ranges CSV (start_ip,end_ip,country_code, as the free DB-IP or "
        "IP2Location LITE country files) first-party analytics derives a visit's country "
        "from; unset, the country is unknown. Never looked up over the network.",
    )
    trusted_relays: list[str] = Field(
        default_factory=list,
        description="Addresses of the MTA that relays into the SMTP intake; only mail from "
        "them may carry an Authentication-Results header that is believed.",
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        """``*_FILE`` settings: the secret read from the file (its last newline dropped)."""
        if not isinstance(data, dict):
            return data
        for name in ("smtp_password", "database_url"):
            path = data.get(f"{name}_file")
            if path and data.get(name) is None:
                try:
                    data[name] = Path(path).read_text(encoding="utf-8").rstrip("\n")
                except OSError as exc:
                    raise ValueError(
                        f"{name.upper()}_FILE: cannot read {path}: {exc.strerror}"
                    ) from None
        return data

    @field_validator("geoip_csv")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"GEOIP_CSV: {value} is not a file")
        return None if value is None else value.expanduser().resolve()

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def db_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'privault.db'}"

    @property
    def keyring_path(self) -> Path:
        return self.data_dir / "keyring.json"

    @property
    def maildir(self) -> Path:
        return self.data_dir / "maildir"
