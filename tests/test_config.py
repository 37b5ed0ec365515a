"""Settings: safe embedded defaults, and a production mode that refuses to run half-configured."""
from __future__ import annotations

import logging
import stat

import pytest
from cryptography.fernet import Fernet

from vsync.config import ConfigError, load_config

PG = "postgresql://db.example/vsync"


def test_embedded_default_generates_owner_only_secrets_once(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        first = load_config(str(tmp_path), environ={})
    assert first["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert first["REDIS_URL"] is None
    for name in ("secret_key", "encryption_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert sum("Generated" in r.message for r in caplog.records) == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = load_config(str(tmp_path), environ={})
    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert second["VSYNC_ENCRYPTION_KEYS"] == first["VSYNC_ENCRYPTION_KEYS"]
    assert not caplog.records


@pytest.mark.parametrize("missing", ["SECRET_KEY", "VSYNC_ENCRYPTION_KEYS", "DATABASE_URL"])
def test_production_refuses_to_start_without_each_required_setting(tmp_path, missing):
    env = {"VSYNC_ENV": "production", "SECRET_KEY": "s" * 40,
           "VSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "DATABASE_URL": PG}
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        load_config(str(tmp_path), environ=env)
    assert not list(tmp_path.iterdir())  # no generated fallback secrets either


def test_production_refuses_sqlite(tmp_path):
    env = {"VSYNC_ENV": "production", "SECRET_KEY": "s" * 40,
           "VSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "DATABASE_URL": "sqlite:///x.db"}
    with pytest.raises(ConfigError, match="PostgreSQL"):
        load_config(str(tmp_path), environ=env)


def test_production_sets_secure_cookies_and_reads_every_key(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    config = load_config(str(tmp_path), environ={
        "VSYNC_ENV": "production", "SECRET_KEY": "s" * 40, "VSYNC_ENCRYPTION_KEYS": f"{new}, {old}",
        "DATABASE_URL": "postgres://u@db/vsync", "REDIS_URL": "redis://r:6379/0", "PORT": "8000"})
    assert config["SESSION_COOKIE_SECURE"] and config["SESSION_COOKIE_HTTPONLY"]
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["VSYNC_ENCRYPTION_KEYS"] == [new, old]
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql://u@db/vsync"
    assert config["REDIS_URL"] == "redis://r:6379/0" and config["PORT"] == 8000


def test_unknown_environment_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="VSYNC_ENV"):
        load_config(str(tmp_path), environ={"VSYNC_ENV": "prod"})
