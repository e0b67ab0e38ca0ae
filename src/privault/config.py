"""Settings, read from the environment (prefix ``PRIVAULT_``) and validated at start."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
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
    log_json: bool = Field(default=False, description="Write logs as JSON lines.")
    mail_from: str = Field(
        default="Kallu <no-reply@kallu.cc>", description="From address of mail the service sends."
    )

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
