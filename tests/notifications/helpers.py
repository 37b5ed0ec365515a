"""Provider calls for notification tests, inserted as the sync would write them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert

from vsync.extensions import db
from vsync.models import Call
from vsync.tenancy import platform_bypass

NUMBER = "+12125550111"


def call(
    account_id: int,
    number_id: int,
    external_id: str,
    started: datetime,
    *,
    direction="inbound",
    status="answered",
    from_number="+15550000000",
    to_number=NUMBER,
    agent=None,
    wait: int = 10,
) -> dict:
    """A call row; an answered one was answered after `wait` seconds, another rang 30 s."""
    return {
        "account_id": account_id,
        "phone_number_id": number_id,
        "external_id": external_id,
        "direction": direction,
        "status": status,
        "from_number": from_number,
        "to_number": to_number,
        "started_at": started,
        "answered_at": started + timedelta(seconds=wait) if status == "answered" else None,
        "duration_ms": 60_000 if status == "answered" else None,
        "ring_ms": None if status == "answered" else 30_000,
        "agent_extension": agent,
        "raw": {},
    }


def insert_calls(rows: list[dict]) -> None:
    with platform_bypass("test setup"):
        db.session.execute(insert(Call.__table__), rows)
        db.session.commit()
