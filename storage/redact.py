"""URLs and messages made safe to print: passwords and tokens replaced by ``***``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

__all__ = ["MASK", "redact_secrets", "redact_url", "url_password"]

MASK = "***"

# Query parameters that carry credentials (InfluxDB's u/p, tokens, API keys).
_SECRET_QUERY = re.compile(r"(?i)(^|[?&;])(p|password|pass|pwd|token|secret|key|api_key)=[^&;#]*")
# A URL inside a message (up to white space or a quote).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def redact_url(url: str) -> str:
    """The URL with its password (and secret query values) masked; safe for logs and errors.

    >>> redact_url("mqtts://app@ttn:NNSXS.SECRET@eu1.cloud.thethings.network:8883")
    'mqtts://app@ttn:***@eu1.cloud.thethings.network:8883'

    Works on malformed URLs too (a port that is not a number): unlike ``urlsplit().port`` it
    never parses the port; the password is whatever lies between the user's ``:`` and the
    last ``@`` before the path.
    """
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    # The user info ends at the last "@" before the query: a password with an unencoded "/"
    # would otherwise look like a path and be printed (masking too much is the safe error).
    before_query = min((i for i in (rest.find("?"), rest.find("#")) if i != -1), default=len(rest))
    at_index = rest.rfind("@", 0, before_query)
    netloc_end = len(rest)
    for stop in "/?#":
        index = rest.find(stop, max(at_index, 0), netloc_end)
        if index != -1:
            netloc_end = index
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return text
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':' + MASK if colon else ''}@{hostport}{tail}"


def redact_secrets(message: str, secrets: Iterable[str]) -> str:
    """``message`` with each secret (and each URL's password, in any spelling) masked."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), unquote(secret)}:
            if len(form) >= 3:
                message = message.replace(form, MASK)
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), message)


def url_password(url: str) -> str:
    """The password a URL carries, or "" (for masking it wherever it may appear)."""
    _scheme, sep, rest = url.partition("://")
    if not sep:
        return ""
    before_query = re.split(r"[?#]", rest, maxsplit=1)[0]
    userinfo, at, _host = before_query.rpartition("@")
    return userinfo.partition(":")[2] if at else ""
