"""A development certificate authority for the broker's TLS listener (`sharpeyes broker ca`).

Good enough for a lab, a pilot compound or CI: one CA key kept beside its certificate (0600), a
server certificate whose names cover how clients reach the broker, and optional client
certificates. Production sites use their organisation's CA; the broker configuration only needs
the three PEM paths either way. Keys are ECDSA P-256: small, fast on a 2-core edge, and accepted
by every TLS stack Mosquitto and Python link against.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.credentials import write_private

DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1", "mosquitto")


@dataclass(frozen=True, slots=True)
class CertFiles:
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sharpeyes development CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(path, pem.decode())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


class DevCA:
    """The CA under `directory`: created on first use, reused afterwards so issued certificates stay valid."""

    def __init__(self, directory: Path, *, days: int = 825, common_name: str = "sharpeyes dev CA") -> None:
        self.directory = Path(directory)
        self.days = days
        self.files = CertFiles(self.directory / "ca.crt", self.directory / "ca.key")
        if self.files.cert.is_file() and self.files.key.is_file():
            self.cert = x509.load_pem_x509_certificate(self.files.cert.read_bytes())
            key = serialization.load_pem_private_key(self.files.key.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{self.files.key} is not an EC key written by `sharpeyes broker ca`")
            self.key = key
            self.created = False
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            now = dt.datetime.now(dt.UTC)
            self.cert = (
                x509.CertificateBuilder()
                .subject_name(_name(common_name))
                .issuer_name(_name(common_name))
                .public_key(self.key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                  key_encipherment=False, data_encipherment=False, key_agreement=False,
                                  encipher_only=False, decipher_only=False),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256())
            )
            _write_key(self.files.key, self.key)
            _write_cert(self.files.cert, self.cert)
            self.created = True

    def issue(self, stem: str, common_name: str, *, server_names: list[str] | None = None) -> CertFiles:
        """Write `<stem>.crt` and `<stem>.key`: a server certificate when `server_names` is given, else a client one."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=self.days), self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if server_names:
            builder = builder.add_extension(_san(server_names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        files = CertFiles(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        _write_key(files.key, key)
        _write_cert(files.cert, cert)
        return files


def create_dev_pki(
    directory: Path,
    *,
    server_names: list[str] | None = None,
    clients: list[str] | None = None,
    days: int = 825,
) -> dict[str, CertFiles]:
    """CA (kept if present), a fresh server certificate, and one client certificate per name."""
    ca = DevCA(directory, days=days)
    names = list(dict.fromkeys([*(server_names or []), *DEFAULT_SERVER_NAMES]))
    issued = {"ca": ca.files, "server": ca.issue("server", names[0], server_names=names)}
    for client in clients or []:
        issued[f"client-{client}"] = ca.issue(f"client-{client}", client)
    return issued
