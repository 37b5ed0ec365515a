"""Money: `Decimal` amounts in a currency's minor units, never floats.

Each amount an invoice states (a line, the tax) is rounded once, half-up, to the currency's minor
units (ISO 4217); sums of rounded amounts need no rounding. The table holds the currencies vsync
bills in; a currency outside it is refused rather than guessed.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from vsync.errors import ValidationError

MINOR_UNITS = {  # ISO 4217
    "AUD": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "ILS": 2,
    "INR": 2,
    "ISK": 0,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PLN": 2,
    "SEK": 2,
    "SGD": 2,
    "TND": 3,
    "USD": 2,
    "ZAR": 2,
}


def validate_currency(currency: str, *, field: str = "currency") -> str:
    if currency not in MINOR_UNITS:
        raise ValidationError(f"Unknown currency {currency!r}: use an ISO 4217 code such as USD or EUR.", field=field)
    return currency


def decimal_places(amount: Decimal) -> int:
    """How many digits a finite amount has after the point (0 for whole amounts and for 1E+2)."""
    exponent = amount.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def round_money(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half-up to the currency's minor units (the one rounding of a line)."""
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[validate_currency(currency)]), rounding=ROUND_HALF_UP)


def format_money(amount: Decimal, currency: str) -> str:
    """`1234.50 USD`: exactly the stored amount, in the currency's minor units."""
    return f"{round_money(amount, currency)} {currency}"
