"""Test accounts' API keys: one HMAC, one Ed25519 and one RSA key per account.

HMAC and Ed25519 keys derive from the simulator's seed, so a run repeats; RSA keys cannot be
seeded through `cryptography`, and generating one costs tens of milliseconds, so they come
from a process-wide pool (the same private key may serve several simulators, harmless since
each simulator has its own registry).
"""

import random
import string
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from exconn.sim.auth import KeyRegistry

_ALNUM = string.ascii_letters + string.digits
_RSA_POOL: list[bytes] = []
_RSA_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """Everything a client needs to trade as one simulated account."""

    account: str
    uid: int
    hmac_key: str
    hmac_secret: str
    ed25519_key: str
    ed25519_private_pem: str  # PKCS#8, unencrypted
    rsa_key: str
    rsa_private_pem: str  # PKCS#8, unencrypted


def _alnum(rng: random.Random, n: int = 64) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def _pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _rsa_pem(index: int) -> bytes:
    with _RSA_LOCK:
        while len(_RSA_POOL) <= index:
            _RSA_POOL.append(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        return _RSA_POOL[index]


def make_keys(registry: KeyRegistry, seed: int, index: int, permissions: frozenset[str]) -> ApiKeys:
    """Create and register the three keys of account number `index`."""
    rng = random.Random(f"{seed}/account/{index}")
    account = f"sim-account-{index + 1}"
    hmac_key, secret = _alnum(rng), _alnum(rng)
    ed_key, rsa_key = _alnum(rng), _alnum(rng)
    ed_pem = _pem(ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32)))
    rsa_pem = _rsa_pem(index)
    registry.add_hmac(hmac_key, secret, account=account, permissions=permissions)
    registry.add_public_key(ed_key, ed_pem, account=account, permissions=permissions)
    registry.add_public_key(rsa_key, rsa_pem, account=account, permissions=permissions)
    return ApiKeys(
        account,
        100_000_000 + index,
        hmac_key,
        secret,
        ed_key,
        ed_pem.decode(),
        rsa_key,
        rsa_pem.decode(),
    )
