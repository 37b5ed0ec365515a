"""What a secret looks like in a provider payload, and the markers that replace it.

Two uses share this vocabulary:

- **Before storing.** MightyCall puts the account's API key (`ApiKey`) in every webhook event. The
  receiver replaces it with a marker saying only whether it matched the integration's key
  (`vsync.services.webhooks`), so no stored body, and nothing shown from one, holds it.
- **Before showing.** The platform console shows raw payloads (webhook bodies and headers) through
  `redact_payload`, and text vsync did not write itself (errors quoting MightyCall, audit summaries)
  through `redact_text`: the value of every field whose name says it holds a credential, token,
  secret, signature or password, every link a field names as one (a recording's `uri`: its path may
  be the capability), and every link carrying a query (a pre-signed URL's signature and expiry) or a
  user name and password is replaced by a marker. The org console never shows a raw payload at all.

Redaction errs towards hiding: a field called `token_type` loses its value too. Markers are left
as they are, so a stored body's "did the key match" survives being shown.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

MARKER = "[redacted]"
API_KEY_MATCHED = "[removed: matched]"
API_KEY_NOT_MATCHED = "[removed: did not match]"

_SECRET_PARTS = (
    "apikey",
    "userkey",
    "accesskey",
    "privatekey",
    "secretkey",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "authorization",
    "signature",
    "credential",
    "cookie",
    "sessionid",
)
_SECRET_NAMES = ("key", "sig", "auth", "pwd")
_LINK_ENDINGS = ("uri", "url", "link", "href")
_URL = re.compile(r"""(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s"'<>\\]+""")
# `name: value`, `"name": "value"`, `name=value`, `Authorization: Bearer value`: a secret's name (from
# the start of a word, with bounded affixes, so a long body costs linear time), then its value up to
# the next quote, separator or space. Markers are never redacted again.
_SECRET_WORDS = (
    r"api[\W_]?key|user[\W_]?key|access[\W_]?key|private[\W_]?key|secret|token|password|passwd"
    r"|passphrase|authorization|signature|credential|cookie|session[\W_]?id"
)
_NAMED_VALUE = re.compile(
    rf"""(?<![\w-])(?P<name>[\w-]{{0,40}}?(?:{_SECRET_WORDS})[\w-]{{0,40}})"""
    r"""(?P<sep>["']?\s*[:=]\s*["']?(?:(?:bearer|basic)\s+)?)(?!\[(?:removed|redacted))(?P<value>[^"'&\s,;}]+)""",
    re.IGNORECASE,
)
_API_KEY_VALUE = re.compile(
    r"""(?<![\w-])(?P<name>[\w-]{0,40}?api[\W_]?key)(?P<sep>["']?\s*[:=]\s*["']?)"""
    r"""(?!\[removed)(?P<value>[^"'&\s,;}]+)""",
    re.IGNORECASE,
)


@lru_cache(maxsize=1024)
def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_api_key_name(name: str) -> bool:
    """Whether a field is an API key: `ApiKey`, `api_key`, `X-Api-Key`, ..."""
    return _normal(name).endswith("apikey")


def is_secret_name(name: str) -> bool:
    normal = _normal(name)
    return normal in _SECRET_NAMES or any(part in normal for part in _SECRET_PARTS)


def is_link_name(name: str) -> bool:
    return _normal(name).endswith(_LINK_ENDINGS)


def is_marker(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("[removed", MARKER))


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MARKER
    return f"{parts.scheme}://{host}{port}/{MARKER}" if host else MARKER


def _link(match: re.Match[str]) -> str:
    url = match.group(0)
    try:
        parts = urlsplit(url)
        signed = bool(parts.query or parts.fragment or parts.username or parts.password)
    except ValueError:
        signed = True
    return _origin(url) if signed else url


def redact_text(text: str) -> str:
    """`text` with secrets' values after their names, and links with a query or credentials, replaced."""
    text = _URL.sub(_link, text)
    return _NAMED_VALUE.sub(lambda m: f"{m['name']}{m['sep']}{MARKER}", text)


def redact(value: Any, name: str = "") -> Any:
    """A JSON value with every secret replaced (see the module's docstring); `name` is the field it is in."""
    if is_marker(value) or value is None or value == "":
        return value
    if name and is_secret_name(name):
        return MARKER
    if isinstance(value, dict):
        return {key: redact(item, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, name) for item in value]
    if isinstance(value, str):
        if name and is_link_name(name):
            return _origin(value) if "://" in value else MARKER
        return redact_text(value)
    return value


def redact_payload(body: str | None) -> str:
    """A stored raw payload for a page: JSON redacted and indented; any other text redacted as text."""
    if not body:
        return ""
    try:
        return json.dumps(redact(json.loads(body)), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return redact_text(body)


def api_key_fields_replaced(text: str, marker) -> str:
    """`text` that may not be JSON (a refused body: malformed, cut, not JSON) with the value after
    every API key's name replaced by `marker(value)`."""
    return _API_KEY_VALUE.sub(lambda m: f"{m['name']}{m['sep']}{marker(m['value'])}", text)
