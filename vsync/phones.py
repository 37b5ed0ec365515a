"""Phone numbers in E.164, parsed and validated with Google's libphonenumber (`phonenumbers`)."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from vsync.errors import ValidationError


def normalize_e164(raw: str | None, *, field: str = "number", region: str | None = None) -> str:
    """`raw` as E.164 (`+14155550123`), or a ValidationError naming `field` (also when it is missing).

    Without `region` the number must carry its country code: guessing one from digits alone is how
    a US number ends up filed as a UK one.
    """
    text = (raw or "").strip()
    if not text:
        raise ValidationError("A phone number is required.", field=field)
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            f"{text!r} is not a phone number; write it in E.164, with + and the country code (e.g. +14155550123).",
            field=field,
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(f"{text!r} is not a valid phone number.", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def try_e164(raw: str | None) -> str | None:
    """E.164 when `raw` is a valid number, else None. Cached: a sync sees the same few numbers
    on every one of its calls."""
    try:
        return normalize_e164(raw or "")
    except ValidationError:
        return None
