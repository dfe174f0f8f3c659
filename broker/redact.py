"""Secrets out of text that may hold URLs (exception messages, log lines, stored error causes):
the password of ``scheme://user:password@host`` and the values of query parameters that carry
keys or tokens (WeCom's ``?key=``, DingTalk's ``sign=``, ``access_token=``...)."""

from __future__ import annotations

import re

_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s:/@]*):[^\s@/]*@")
_QUERY_SECRET_RE = re.compile(
    r"(?i)(?P<name>[?&](?:key|sign|signature|sig|token|access_token|secret|password|passwd|pwd|api_key)=)[^&#\s'\"]+")


def redact(text: str) -> str:
    """TEXT with every URL password and secret query value replaced by ***."""
    text = _USERINFO_RE.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _QUERY_SECRET_RE.sub(lambda m: f"{m['name']}***", text)
