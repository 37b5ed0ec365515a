"""Fixtures of the API tests."""

from __future__ import annotations

import pytest

from tests.api.helpers import caller


@pytest.fixture
def as_(app, world):
    """`as_("admin_a")`: a client acting as that principal of the world."""
    return lambda principal: caller(app, world, principal)
