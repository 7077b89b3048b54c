"""The Fever feed's values, read strictly: what is not exactly a price, a date-time or a known
`sell_mode` is refused with a reason (ValueError) that quotes at most 40 characters of it."""

import math
import re
from datetime import datetime
from urllib.parse import quote

_PRICE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
SELL_MODES = {"online": True, "offline": False}


def shown(raw: str) -> str:
    """A feed's value as a reason quotes it: at most 40 characters of it."""
    return repr(raw) if len(raw) <= 40 else repr(raw[:40]) + "…"


def required(attrs: dict[str, str], name: str) -> str:
    """The attribute, stripped; ValueError when it is missing or blank."""
    value = attrs.get(name, "").strip()
    if not value:
        raise ValueError(f"missing attribute {name}")
    return value


def read_timestamp(attrs: dict[str, str], name: str) -> datetime:
    raw = attrs.get(name)
    if raw is None or not raw.strip():
        raise ValueError(f"missing attribute {name}")
    try:
        if _DATE_TIME.fullmatch(raw):
            return datetime.fromisoformat(raw)
    except ValueError:
        pass
    raise ValueError(f"invalid {name} {shown(raw)}: not YYYY-MM-DDTHH:MM:SS")


def read_price(raw: str | None) -> float:
    """An ASCII decimal, optionally signed and with a fraction; -0 is 0; negative is refused."""
    if raw is None:
        raise ValueError("zone without a price (missing attribute price)")
    if not _PRICE.fullmatch(raw):
        raise ValueError(f"zone price {shown(raw)} is not a decimal number")
    price = float(raw) + 0.0  # -0.0 + 0.0 is 0.0
    if not math.isfinite(price):
        raise ValueError(f"zone price {shown(raw)} is out of range")
    if price < 0:
        raise ValueError(f"negative zone price {shown(raw)}")
    return price


def key_part(value: str) -> str:
    """A key part percent-encoded, so that ids holding "/" cannot collide; "?" when missing."""
    if value.isascii() and value.isalnum():
        return value  # what quote() would return, at a fraction of its cost
    return quote(value, safe="") if value else "?"


def read_sell_mode(attrs: dict[str, str]) -> bool:
    """Whether a base is on sale: `sell_mode` is exactly `online` (True) or `offline` (False)."""
    mode = attrs.get("sell_mode")
    if mode is None:
        raise ValueError("missing attribute sell_mode")
    if mode not in SELL_MODES:
        raise ValueError(f"unknown sell_mode {shown(mode)} (only online and offline are known)")
    return SELL_MODES[mode]
