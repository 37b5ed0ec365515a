"""API keys: shown once, stored as a SHA-256 hash, scoped to one org or to the platform."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vsync.extensions import db
from vsync.models.types import UtcDateTime, utcnow
from vsync.tenancy import OrgOwned

SCOPES = ("read", "write")


class ApiKey(OrgOwned, db.Model):
    """`org_id` empty means a platform key, which only platform admins can create or see."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(40), default="read")
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def scope_list(self) -> tuple[str, ...]:
        return tuple(s for s in self.scopes.split(",") if s)

    @property
    def prefix(self) -> str:
        return f"vsk_{self.public_id}"

    @property
    def is_platform(self) -> bool:
        return self.org_id is None

    def usable_at(self, when: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or when < self.expires_at)

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix} org={self.org_id}>"
