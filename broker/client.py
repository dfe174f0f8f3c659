"""Apply a site's broker settings (credentials and TLS) to a paho client, the same way everywhere.

Edges and central both call `configure_client` right after creating their `mqtt.Client`, so a
TLS or credential setting means the same thing in every process: the broker's certificate is
always verified (chain against `ca_file`, or the system trust store when it is left out), and a
password that was configured but cannot be found is an error at start-up, not an anonymous
connection that the broker refuses later with a vaguer reason.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import paho.mqtt.client as mqtt

from broker.connectionconfig import BrokerConfig


class BrokerClientError(RuntimeError):
    """The broker settings cannot be applied: a missing secret or certificate file, named with its fix."""


def _existing(path: str, key: str) -> str:
    if not Path(path).is_file():
        raise BrokerClientError(
            f"broker.{key}: {path} does not exist (fix: point it at the file written by `sharpeyes broker ca`, "
            "or mount it there)"
        )
    return path


def tls_context(broker: BrokerConfig) -> ssl.SSLContext:
    """A client TLS context that verifies the broker's certificate chain (and host name unless tls_insecure)."""
    cafile = _existing(broker.ca_file, "ca_file") if broker.ca_file else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if broker.cert_file and broker.key_file:
        context.load_cert_chain(_existing(broker.cert_file, "cert_file"), _existing(broker.key_file, "key_file"))
    if broker.tls_insecure:
        # Only the name check goes; verify_mode stays CERT_REQUIRED, so an unknown CA still fails.
        context.check_hostname = False
    return context


def configure_client(client: mqtt.Client, broker: BrokerConfig, *, default_username: str | None = None) -> None:
    """Set username/password and TLS on `client` from `broker`; call before connect.

    `default_username` is the caller's identity when the configuration names none: an edge passes
    its edge id (its ACL is keyed on it), central passes ``"central"``. Credentials are sent only
    when a password source (password_env / password_file) or a username is configured, so the
    anonymous demo broker keeps working with a bare configuration.
    """
    password = broker.password()
    if broker.password_env and password is None:
        raise BrokerClientError(
            f"broker.password_env names {broker.password_env}, which is not set "
            f"(fix: export {broker.password_env}=<this device's broker password>)"
        )
    if broker.password_file and password is None:
        raise BrokerClientError(
            f"broker.password_file: {broker.password_file} does not exist (fix: mount the device's password file there)"
        )
    username = broker.username or default_username
    if broker.username or password is not None:
        if not username:
            raise BrokerClientError("a broker password is configured but no username (fix: add broker.username)")
        client.username_pw_set(username, password)
    if broker.tls:
        client.tls_set_context(tls_context(broker))
        if broker.tls_insecure:
            client.tls_insecure_set(True)
