"""Self-signed RSA key + certificate pairs for test IdPs and SPs (``cryptography``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    private_key_pem: str
    certificate_pem: str

    @property
    def certificate_b64(self) -> str:
        """The certificate as base64 DER on one line (SAML metadata / ``certData``)."""
        body = [
            line
            for line in self.certificate_pem.strip().splitlines()
            if not line.startswith("-----")
        ]
        return "".join(body)


def make_key_pair(common_name: str, *, days: int = 365) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
    )
