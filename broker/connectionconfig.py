"""How a client (an edge, central, a tool) reaches the broker: address, protocol, credentials, TLS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from broker.configbase import StrictModel


class BrokerConfig(StrictModel):
    """How a client (an edge, central, a tool) reaches the broker.

    Credentials: the username defaults to the client's role identity (an edge's id, ``central``)
    when left out; the password comes from ``password_env`` or ``password_file`` (a mounted
    secret), never from this file. TLS verifies the broker's certificate against ``ca_file`` (or
    the system's trust store when it is left out); ``tls_insecure`` only skips the host-name check
    and exists for lab set-ups that reach the broker by an address not in its certificate.
    """

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")
    password_file: str | None = Field(None, description="file holding the password (a container secret)")
    keepalive_s: int = Field(30, ge=5)
    tls: bool = Field(False, description="connect with TLS (the broker's TLS listener, usually port 8883)")
    ca_file: str | None = Field(None, description="CA certificate (PEM) that signed the broker's certificate")
    cert_file: str | None = Field(None, description="client certificate (PEM), when the broker asks for one")
    key_file: str | None = Field(None, description="private key (PEM) of cert_file")
    tls_insecure: bool = Field(
        False, description="skip the host-name check of the broker's certificate (its chain is still verified)"
    )

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @model_validator(mode="after")
    def _tls_settings_agree(self) -> BrokerConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both (client certificate and its key) or neither")
        if not self.tls:
            for key in ("ca_file", "cert_file", "key_file"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} is set but tls is false; add tls: true (and the TLS port) or remove {key}")
            if self.tls_insecure:
                raise ValueError("tls_insecure is set but tls is false; remove tls_insecure")
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give the password either by password_env or by password_file, not both")
        return self

    def password(self) -> str | None:
        """The configured password, or None when no source is configured or the variable is unset."""
        if self.password_file:
            try:
                return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except FileNotFoundError:
                return None
        return os.environ.get(self.password_env) if self.password_env else None
