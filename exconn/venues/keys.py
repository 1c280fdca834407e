"""API credentials and the signature primitives every venue builds on (pure).

A ``Credentials`` object is the only place a secret lives; its repr, str and pickle never show
it. Which bytes get signed is each venue's rule (``venues/<venue>/signing.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import StrEnum
from typing import Any

from exconn.errors import ConfigError


class KeyKind(StrEnum):
    HMAC = "hmac"  # shared secret; signature is lower-case hex HMAC-SHA256
    RSA = "rsa"  # PKCS#8 private key; RSASSA-PKCS1-v1_5 + SHA-256, base64
    ED25519 = "ed25519"  # PKCS#8 private key; raw Ed25519 signature, base64


class Credentials:
    """An API key and what signs for it: an HMAC secret or a private key (PEM)."""

    __slots__ = ("_key", "_secret", "api_key", "kind")

    def __init__(
        self,
        api_key: str,
        *,
        secret: str | None = None,
        private_key_pem: bytes | str | None = None,
        passphrase: bytes | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError("an API key is required")
        if (secret is None) == (private_key_pem is None):
            raise ConfigError("give exactly one of secret (HMAC) or private_key_pem (RSA/Ed25519)")
        self.api_key = api_key
        self._secret = secret.encode() if secret is not None else b""
        self._key: Any = None
        if private_key_pem is None:
            self.kind = KeyKind.HMAC
            return
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        try:
            key = load_pem_private_key(pem, password=passphrase)
        except (ValueError, TypeError) as exc:
            # The loader's message can quote key material: keep only its type.
            raise ConfigError(f"cannot load the private key ({type(exc).__name__})") from None
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self.kind = KeyKind.ED25519
        elif isinstance(key, rsa.RSAPrivateKey):
            self.kind = KeyKind.RSA
        else:
            raise ConfigError("private key must be Ed25519 or RSA")
        self._key = key

    def sign(self, payload: str) -> str:
        """Signature of the UTF-8 bytes of ``payload``: hex for HMAC, base64 otherwise."""
        data = payload.encode()
        if self.kind is KeyKind.HMAC:
            return hmac.new(self._secret, data, hashlib.sha256).hexdigest()
        if self.kind is KeyKind.ED25519:
            return base64.b64encode(self._key.sign(data)).decode()
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return base64.b64encode(self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()

    def __repr__(self) -> str:
        shown = self.api_key[:4] + "…" if len(self.api_key) > 8 else "…"
        return f"Credentials({self.kind.value}, api_key={shown})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Credentials never travel between processes by accident (pickled into a message or a
        # log record): each process loads them from its own configuration.
        raise TypeError("Credentials cannot be pickled")
