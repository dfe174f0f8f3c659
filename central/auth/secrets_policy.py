"""What ``central serve`` refuses to start with outside ``--demo``: default or short passwords, a
missing or weak token key, Open311 intake without a key. Pure: it reads configuration, not sockets.

Each problem names the user or key and the fix, so an operator reads one message and is done.
"""

from __future__ import annotations

from broker.siteconfig import SiteConfig, UserConfig
from central.auth.tokens import KEY_FIX, SECRET_ENV, TokenKey, TokenKeyError, check_key
from central.workflow.config import WorkflowConfig

MIN_PASSWORD_CHARS = 12
# Passwords that ship with sharpeyes (configs/demo.yaml, docs) or top every leaked-password list.
KNOWN_DEFAULT_PASSWORDS = frozenset({
    "sharpeyes-admin", "sharpeyes-monitor", "sharpeyes-worker", "sharpeyes-supervisor", "sharpeyes-chief",
    "sharpeyes-unit", "sharpeyes", "admin", "admin123", "password", "password1", "123456", "12345678",
    "123456789", "1234567890", "qwerty", "changeme", "letmein", "hik12345", "admin12345",
})


def password_problems(users: list[UserConfig]) -> list[str]:
    problems = []
    for user in users:
        secret = user.secret()
        source = f"${user.password_env}" if user.password_env else "password"
        fix = f"set {user.password_env or 'its password_env variable'} to a password of {MIN_PASSWORD_CHARS}+ characters"
        if secret is None:
            continue  # no password: the user cannot log in at all (users.sync_users warns)
        if secret.lower() in KNOWN_DEFAULT_PASSWORDS:
            problems.append(f"user {user.username}: {source} is a known default password (fix: {fix})")
        elif len(secret) < MIN_PASSWORD_CHARS:
            problems.append(f"user {user.username}: {source} has {len(secret)} characters, fewer than "
                            f"{MIN_PASSWORD_CHARS} (fix: {fix})")
        elif user.password is not None and not user.password_env:
            problems.append(f"user {user.username}: the password is written in the site file (fix: move it to "
                            "an environment variable named by password_env)")
    return problems


def token_key_problems(key: TokenKey | None) -> list[str]:
    if key is None or key.source.startswith("generated"):
        return [f"{SECRET_ENV}: no token key is configured; a key generated on this disk would differ on every "
                f"other central process and on a restored machine (fix: {KEY_FIX})"]
    try:
        check_key(key)
    except TokenKeyError as exc:
        return [str(exc)]
    return []


def open311_problems(flow: WorkflowConfig) -> list[str]:
    cfg = flow.open311
    if not cfg.enabled:
        return []
    if cfg.required_key():
        return []
    where = f"${cfg.api_key_env} is not set" if cfg.api_key_env else "open311.api_key_env is not configured"
    return [f"open311: intake is enabled but {where}, so anyone could file incidents (fix: set "
            "open311.api_key_env in the workflow file and export that variable, or open311.enabled: false)"]


def startup_problems(site: SiteConfig, flow: WorkflowConfig, key: TokenKey | None) -> list[str]:
    return password_problems(site.users) + token_key_problems(key) + open311_problems(flow)
