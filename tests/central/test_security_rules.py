"""The pure rules behind central's security: what the secrets policy refuses, how URLs are
redacted, how the Open311 rate limit counts, and which body limit a path gets."""

from __future__ import annotations

import pytest

from broker.redact import redact
from broker.siteconfig import UserConfig
from central.api.limits import limit_for
from central.auth.rate_limit import RateLimiter
from central.auth.secrets_policy import open311_problems, password_problems, token_key_problems
from central.auth.tokens import TokenIssuer, TokenKey, TokenKeyError
from central.workflow.config import WorkflowConfig


def test_passwords_that_are_defaults_short_or_written_in_the_file_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_OK", "a-long-enough-password")
    monkeypatch.setenv("PW_SHORT", "short-pw")
    monkeypatch.setenv("PW_DEFAULT", "Sharpeyes-Admin")
    users = [UserConfig(username="ok", role="admin", password_env="PW_OK"),
             UserConfig(username="short", role="monitor", password_env="PW_SHORT"),
             UserConfig(username="default", role="monitor", password_env="PW_DEFAULT"),
             UserConfig(username="inline", role="monitor", password="an-inline-long-password"),
             UserConfig(username="unset", role="monitor", password_env="PW_UNSET_HERE")]
    problems = password_problems(users)
    assert len(problems) == 3
    assert problems[0].startswith("user short: $PW_SHORT has 8 characters, fewer than 12 (fix: set PW_SHORT")
    assert problems[1].startswith("user default: $PW_DEFAULT is a known default password")
    assert problems[2].startswith("user inline: the password is written in the site file")


def test_token_keys_must_be_configured_and_long(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "no token key is configured" in token_key_problems(None)[0]
    assert "no token key is configured" in token_key_problems(TokenKey("g" * 64, "generated (var/jwt_secret)"))[0]
    assert "is 5 bytes" in token_key_problems(TokenKey("short", "SHARPEYES_JWT_SECRET"))[0]
    assert token_key_problems(TokenKey("k" * 32, "SHARPEYES_JWT_SECRET")) == []
    with pytest.raises(TokenKeyError, match="empty"):
        TokenIssuer(TokenKey("", "SHARPEYES_JWT_SECRET_FILE (/run/secrets/jwt)"))
    with pytest.raises(TokenKeyError, match="at least 32"):
        TokenIssuer("x")


def test_open311_intake_needs_a_key_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "intake is enabled but open311.api_key_env is not configured" in open311_problems(WorkflowConfig())[0]
    keyed = WorkflowConfig.model_validate({"open311": {"api_key_env": "HOTLINE_KEY"}})
    monkeypatch.delenv("HOTLINE_KEY", raising=False)
    assert "$HOTLINE_KEY is not set" in open311_problems(keyed)[0]
    monkeypatch.setenv("HOTLINE_KEY", "k")
    assert open311_problems(keyed) == []
    assert open311_problems(WorkflowConfig.model_validate({"open311": {"enabled": False}})) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("rtsp://admin:Hik12345@10.0.0.2:554/ch1", "rtsp://admin:***@10.0.0.2:554/ch1"),
    ("av.error: [Errno 5] rtsp://u:p%40ss@cam/x: I/O error", "av.error: [Errno 5] rtsp://u:***@cam/x: I/O error"),
    ("ConnectError for url 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7x'",
     "ConnectError for url 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***'"),
    ("https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1&sign=xyz%3D",
     "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1&sign=***"),
    ("rtsp://10.0.0.2/ch1 and nothing secret", "rtsp://10.0.0.2/ch1 and nothing secret"),
])
def test_redact_removes_url_passwords_and_secret_query_values(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_rate_limiter_counts_every_key_in_a_sliding_window() -> None:
    now = [0.0]
    limiter = RateLimiter(3, 60.0, clock=lambda: now[0])
    assert [limiter.allow("address:a", "key:k") for _ in range(3)] == [None, None, None]
    wait = limiter.allow("address:b", "key:k")  # the key is spent even from another address
    assert wait is not None and 59 < wait <= 60
    assert limiter.allow("address:b", "key:other") is None
    now[0] = 60.5
    assert limiter.allow("address:a", "key:k") is None


def test_bodies_get_the_limit_of_their_path() -> None:
    assert limit_for("/api/v1/uploads") > 10 * 1024 * 1024
    assert limit_for("/open311/v2/requests.json") == 64 * 1024
    assert limit_for("/api/v1/auth/token") == 8 * 1024
    assert limit_for("/api/v1/incidents/1/actions/feedback") == 1024 * 1024
