"""Settings: safe embedded defaults, and a production mode that refuses to run half-configured."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from vsync.config import ConfigError, load_config
from vsync.models import User

ROOT = Path(__file__).resolve().parent.parent

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
    env = {
        "VSYNC_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "VSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": PG,
    }
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        load_config(str(tmp_path), environ=env)
    assert not list(tmp_path.iterdir())  # no generated fallback secrets either


def test_production_refuses_sqlite(tmp_path):
    env = {
        "VSYNC_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "VSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": "sqlite:///x.db",
    }
    with pytest.raises(ConfigError, match="PostgreSQL"):
        load_config(str(tmp_path), environ=env)


def test_production_sets_secure_cookies_and_reads_every_key(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    config = load_config(
        str(tmp_path),
        environ={
            "VSYNC_ENV": "production",
            "SECRET_KEY": "s" * 40,
            "VSYNC_ENCRYPTION_KEYS": f"{new}, {old}",
            "DATABASE_URL": "postgres://u@db/vsync",
            "REDIS_URL": "redis://r:6379/0",
            "PORT": "8000",
        },
    )
    assert config["SESSION_COOKIE_SECURE"] and config["SESSION_COOKIE_HTTPONLY"]
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["VSYNC_ENCRYPTION_KEYS"] == [new, old]
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql://u@db/vsync"
    assert config["REDIS_URL"] == "redis://r:6379/0" and config["PORT"] == 8000


def test_unknown_environment_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="VSYNC_ENV"):
        load_config(str(tmp_path), environ={"VSYNC_ENV": "prod"})


@pytest.mark.parametrize(
    "name,value,accepts",
    [
        ("VSYNC_SYNC_PAGE_SIZE", "abc", "whole number of at least 1"),
        ("VSYNC_SYNC_PAGE_SIZE", "0", "whole number of at least 1"),
        ("PORT", "99999", "whole number from 1 to 65535"),
        ("VSYNC_SESSION_HOURS", "1.5", "whole number"),
        ("VSYNC_MIGHTYCALL_TIMEOUT", "5", "2 comma-separated non-negative numbers"),
        ("SESSION_COOKIE_SECURE", "maybe", "true or false"),
        ("VSYNC_LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR"),
        ("VSYNC_PASSWORD_HASH", "md5", "Werkzeug hash method"),
    ],
)
def test_an_unusable_setting_is_one_line_naming_it_and_what_it_accepts_and_writes_nothing(
    tmp_path, name, value, accepts
):
    with pytest.raises(ConfigError) as refused:
        load_config(str(tmp_path), environ={name: value})
    message = str(refused.value)
    assert message.startswith(name) and accepts in message and repr(value) in message and "\n" not in message
    assert not list(tmp_path.iterdir())  # no generated secrets for a start that is refused


def test_a_bad_setting_stops_the_cli_with_that_line_and_exit_4_without_a_traceback(tmp_path):
    env = {**os.environ, "VSYNC_SYNC_PAGE_SIZE": "abc", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "sync-runs", "acme"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 4
    assert result.stderr.strip() == "vsync: VSYNC_SYNC_PAGE_SIZE must be a whole number of at least 1, not 'abc'."


def test_test_environment_turns_on_flask_testing(tmp_path):
    assert load_config(str(tmp_path), environ={"VSYNC_ENV": "test"})["TESTING"] is True
    assert load_config(str(tmp_path), environ={})["TESTING"] is False


def test_password_hash_defaults_to_scrypt_and_production_refuses_a_cheap_one(tmp_path):
    assert load_config(str(tmp_path), environ={})["VSYNC_PASSWORD_HASH"] == "scrypt"
    cheap = load_config(str(tmp_path), environ={"VSYNC_PASSWORD_HASH": "pbkdf2:sha256:1"})
    assert cheap["VSYNC_PASSWORD_HASH"] == "pbkdf2:sha256:1"
    env = {
        "VSYNC_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "VSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": PG,
        "VSYNC_PASSWORD_HASH": "pbkdf2:sha256:1",
    }
    with pytest.raises(ConfigError, match="VSYNC_PASSWORD_HASH is a test setting"):
        load_config(str(tmp_path), environ=env)


def test_new_passwords_are_hashed_with_the_configured_method(app):
    with app.app_context():
        user = User(email="x@y.test")
        user.set_password("long enough pw")
    assert user.password_hash.startswith("pbkdf2:sha256:1$") and user.check_password("long enough pw")
