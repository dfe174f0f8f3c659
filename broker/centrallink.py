"""How an edge reaches central over HTTP(S), for what MQTT does not carry: the model files
(edge/model_fetch.py, central/api/routes_model_files.py). The site file's ``central:`` section."""

from __future__ import annotations

import os

from pydantic import Field, field_validator

from broker.configbase import StrictModel


class CentralLink(StrictModel):
    url: str = Field(description="central's base URL as the edges reach it, e.g. https://central.example.org")
    token_env: str = Field("SHARPEYES_EDGE_TOKEN", pattern=r"^[A-Z_][A-Z0-9_]*$",
                           description="environment variable holding this edge's token "
                           "(`sharpeyes central edge-token EDGE`); the token is never written in this file")
    ca_file: str | None = Field(None, description="CA certificate (PEM) that signed central's certificate, "
                                "when it is not in the system's trust store")
    timeout_s: float = Field(30.0, gt=0, le=600, description="connect and read timeout of each request")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise ValueError("central url must start with https:// (or http:// on a trusted network)")
        return url.rstrip("/")

    def token(self) -> str | None:
        return os.environ.get(self.token_env) or None
