"""The operator's Ed25519 key and DSSE envelopes around what it signs.

The key is a PKCS#8 PEM file, readable by its owner only (mode 0600), made by ``trainarena keys init``
or on first use (as an SSH host key is). Envelopes are DSSE (the in-toto envelope format), signed and
checked with securesystemslib over pyca/cryptography; a signature's ``keyid`` is securesystemslib's
default key id, the SHA-256 of the public key's canonical description, so a verifier holding the PEM
recomputes it. Payloads are canonical JSON (sorted keys, no spaces, UTF-8), so the same statement is
always the same bytes.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from trainarena.store.base import json_safe

__all__ = [
    "OperatorKey", "OperatorKeyError", "SignatureError", "canonical_json", "envelope_keyid", "envelope_payload", "init_key", "json_safe",
    "load_key", "open_envelope", "public_key_from_pem", "public_pem_for", "retired_keys_dir", "sign_payload",
]


class OperatorKeyError(ValueError):
    """The operator's key file is missing, unreadable or not an Ed25519 private key."""


class SignatureError(ValueError):
    """An envelope that is malformed, of the wrong payload type, or not signed by the expected key."""


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that is signed and hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass(frozen=True)
class OperatorKey:
    """A loaded private key and the public key verifiers are given."""

    signer: CryptoSigner
    public: SSlibKey
    path: Path

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def public_pem(self) -> str:
        return public_pem(self.signer.public_key)


def public_pem(key: SSlibKey) -> str:
    """The public key as a SubjectPublicKeyInfo PEM (what ``keys init`` exports and the API serves)."""
    crypto_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.keyval["public"]))
    return crypto_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_from_pem(pem: str) -> SSlibKey:
    """A verifier's key from an exported public key PEM."""
    try:
        crypto_key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm) as error:  # the library's text (a URL, "MalformedFraming") says no more than this
        raise OperatorKeyError("not a PEM public key") from error
    if not isinstance(crypto_key, Ed25519PublicKey):
        raise OperatorKeyError(f"the public key is {type(crypto_key).__name__}, not Ed25519")
    return SSlibKey.from_crypto(crypto_key)


def retired_keys_dir(path: Path) -> Path:
    """Where the public halves of replaced operator keys are kept, one ``<keyid>.pem`` each."""
    return path.parent / "retired-keys"


def public_pem_for(path: Path, keyid: str) -> str | None:
    """The public key PEM of ``keyid``: the operator key at ``path`` or one it replaced; None if unknown."""
    current = load_key(path) if path.exists() else None
    if current is not None and current.keyid == keyid:
        return current.public_pem()
    retired = retired_keys_dir(path) / f"{keyid}.pem"
    return retired.read_text() if retired.is_file() else None


def init_key(path: Path, *, force: bool = False) -> OperatorKey:
    """Create a new Ed25519 key at ``path`` (0600). Refuses to replace an existing key unless ``force``;
    a replaced key's public half is kept in ``retired-keys/``, so the records it signed still export
    and verify (with it) after the rotation."""
    if path.exists() and not force:
        raise OperatorKeyError(f"{path} already holds a key (fingerprint {load_key(path).keyid[:16]}); "
                        "pass --force to replace it (records signed with it then verify with its old public key)")
    if path.exists():
        old = load_key(path)
        retired_keys_dir(path).mkdir(parents=True, exist_ok=True)
        (retired_keys_dir(path) / f"{old.keyid}.pem").write_text(old.public_pem())
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    if force:
        os.replace(staging, path)
    else:
        try:  # a key created meanwhile by another process wins: both then sign with the same one
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    return load_key(path)


def load_key(path: Path) -> OperatorKey:
    """The operator key stored at ``path``."""
    try:
        crypto_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as error:
        raise OperatorKeyError(f"no operator key at {path}: create one with `trainarena keys init`") from error
    except (OSError, ValueError, TypeError) as error:
        raise OperatorKeyError(f"{path}: not a readable unencrypted PEM private key ({error})") from error
    if not isinstance(crypto_key, Ed25519PrivateKey):
        raise OperatorKeyError(f"{path}: the key is {type(crypto_key).__name__}; trainarena signs with Ed25519 keys")
    signer = CryptoSigner(crypto_key)
    return OperatorKey(signer=signer, public=signer.public_key, path=path)


def sign_payload(key: OperatorKey, payload_type: str, payload: Any) -> dict[str, Any]:
    """A DSSE envelope (its JSON form) of ``payload``'s canonical JSON, signed with ``key``."""
    envelope = Envelope(payload=canonical_json(payload), payload_type=payload_type, signatures={})
    envelope.sign(key.signer)
    return envelope.to_dict()


def envelope_keyid(envelope: dict[str, Any]) -> str | None:
    """The key id an envelope's first signature names (unchecked: what it says signed it)."""
    signatures = envelope.get("signatures") or [{}]
    return signatures[0].get("keyid")


def envelope_payload(envelope: dict[str, Any]) -> Any:
    """The payload of an envelope, decoded, without checking any signature."""
    try:
        return json.loads(base64.b64decode(envelope["payload"], validate=True))
    except (KeyError, TypeError, ValueError, RecursionError) as error:  # RecursionError: JSON nested past Python's stack
        raise SignatureError(f"not a DSSE envelope with a JSON payload: {error}") from error


def open_envelope(envelope: dict[str, Any], key: SSlibKey, payload_type: str) -> Any:
    """The payload of ``envelope`` once its signature by ``key`` checks out; SignatureError otherwise."""
    try:
        parsed = Envelope.from_dict(copy.deepcopy(envelope))  # from_dict rewrites the signatures it is given
    except (KeyError, TypeError, ValueError, AttributeError) as error:  # AttributeError: a payload that is no string
        raise SignatureError(f"not a DSSE envelope: {error}") from error
    if parsed.payload_type != payload_type:
        raise SignatureError(f"payload type is {parsed.payload_type!r}, expected {payload_type!r}")
    try:
        parsed.verify([key], 1)
    except (VerificationError, TypeError, AttributeError) as error:  # the last two: a mangled envelope (a payload that is no string)
        signers = ", ".join(str(keyid)[:16] for keyid in parsed.signatures) or "nobody"
        raise SignatureError(f"not signed by key {key.keyid[:16]} (signed by {signers}): {error}") from error
    return envelope_payload(envelope)
