"""Secrets out of URLs before they are shown: in logs, error lines and ``repr(settings)``.

A database URL can carry its password in two places: the user info
(``postgresql://bot:secret@host/db``) and the query (``?password=secret``, which libpq and
SQLAlchemy's drivers accept too, as ``sslpassword`` and the like). Both become ``***``.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@", re.I)
# a query parameter whose name says it is secret: password, sslpassword, secret, token, key
_QUERY = re.compile(r"(?P<name>[?&;][^=&;#\s]*(?:pass|secret|token|key)[^=&;#\s]*=)[^&;#\s]*", re.I)


def hide_url_secrets(text: str) -> str:
    """``text`` with every URL password (user info or query parameter) replaced by ``***``."""
    return _QUERY.sub(r"\g<name>***", _USERINFO.sub(r"\g<scheme>\g<user>:***@", text))
