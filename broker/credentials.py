"""Broker accounts: who connects (one account per edge, central and worker device) and their secrets.

The password file uses Mosquitto 2's default hash, the one `mosquitto_passwd` writes:
``user:$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512(password, salt)>`` with a
12-byte salt used as raw bytes. Plain-text secrets are taken from the environment or generated
once and kept with 0600 permissions beside the configuration, so re-running `broker config`
never changes a device's password behind its back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from broker.siteconfig import SiteConfig

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's own count; the broker hashes every CONNECT with it
SALT_BYTES = 12
CENTRAL_USER = "central"
WORKER_USER_PREFIX = "worker."  # '.' is not allowed in ids, so no worker account can collide with an edge's
BRIDGE_USER_PREFIX = "bridge."  # a district broker's bridge into this one
PASSWORD_ENV_PREFIX = "SHARPEYES_MQTT_PASSWORD_"


class Role(Enum):
    EDGE = "edge"
    CENTRAL = "central"
    WORKER = "worker"
    BRIDGE = "bridge"


@dataclass(frozen=True, slots=True)
class Account:
    """One broker user. `subject` is the edge or worker id it stands for (None for central)."""

    username: str
    role: Role
    subject: str | None = None

    @property
    def password_env(self) -> str:
        """Environment variable that supplies this account's password to `broker config`."""
        return PASSWORD_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", self.username).upper()


def accounts_for(site: SiteConfig, bridges: list[str] | None = None) -> list[Account]:
    """Every account the site needs, in a stable order: central, the edges, the worker devices.

    `bridges` names district brokers that bridge into this one (`bridge.<name>` accounts).
    """
    accounts = [Account(CENTRAL_USER, Role.CENTRAL)]
    accounts += [Account(edge.id, Role.EDGE, edge.id) for edge in site.edges]
    accounts += [Account(WORKER_USER_PREFIX + worker.id, Role.WORKER, worker.id) for worker in site.workers]
    problems = []
    for name in bridges or []:
        if not re.match(r"^[a-z0-9-]+$", name):
            problems.append(f"bridge name {name!r}: use lower-case letters, digits and '-'")
        accounts.append(Account(BRIDGE_USER_PREFIX + name, Role.BRIDGE, name))
    # An edge called "worker" would own the topic subtree that worker tasks live under, and one
    # called "central" would share central's account.
    for edge in site.edges:
        if edge.id in ("worker", CENTRAL_USER):
            problems.append(f"edge id {edge.id!r} is reserved on the broker; rename the edge")
    seen: dict[str, str] = {}
    for account in accounts:
        other = seen.setdefault(account.password_env, account.username)
        if other != account.username:
            problems.append(f"accounts {other!r} and {account.username!r} would share {account.password_env}; rename one")
    if problems:
        raise ValueError("; ".join(problems))
    return accounts


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The Mosquitto `$7$` hash of `password` (PBKDF2-HMAC-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """True when `hashed` (a `$7$` line's hash part) is the hash of `password`."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise ValueError("not a Mosquitto $7$ (PBKDF2-SHA512) hash")
    iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    computed = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(computed, digest)


def render_password_file(passwords: dict[str, str]) -> str:
    """`user:hash` lines for Mosquitto's password_file."""
    for username in passwords:
        if ":" in username or not username.strip():
            raise ValueError(f"{username!r} cannot be a broker user name (no ':' and not empty)")
    return "".join(f"{username}:{hash_password(password)}\n" for username, password in passwords.items())


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only, without a window where it is wider open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class Secret:
    password: str
    source: str  # "environment", "kept" (an earlier run's file) or "generated"


def resolve_secret(account: Account, secrets_dir: Path, environ: dict[str, str] | None = None) -> Secret:
    """The account's password: from its environment variable, else the kept file, else a new one.

    Whatever the source, the plain text ends up in `secrets_dir/<username>.password` (0600): the
    file an operator copies to the device, or mounts as a container secret.
    """
    env = os.environ if environ is None else environ
    path = secrets_dir / f"{account.username}.password"
    if env.get(account.password_env):
        secret = Secret(env[account.password_env], "environment")
    elif path.is_file():
        kept = path.read_text(encoding="utf-8").rstrip("\r\n")
        if not kept:
            raise ValueError(f"{path} is empty; delete it to generate a new password or put the password in it")
        path.chmod(0o600)  # an operator may have put it there with a wider umask
        return Secret(kept, "kept")
    else:
        secret = Secret(secrets.token_urlsafe(24), "generated")
    write_private(path, secret.password + "\n")
    return secret
