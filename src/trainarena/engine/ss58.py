"""SS58 addresses (Substrate, so Bittensor hotkeys): a full format check with the standard library.

An address is base58 of ``prefix + public key + checksum``: the prefix (1 byte for network formats
0..63, 2 bytes for 64..16383) names the network (Bittensor uses the generic format 42: addresses
that start with '5'), the key is 32 bytes, and the checksum is the first 2 bytes of
``blake2b-512(b"SS58PRE" + prefix + key)``. This checks the alphabet, the length, the checksum and the
network; it does not check that the key belongs to anybody registered on a subnet (that is on chain).
"""

from __future__ import annotations

import hashlib

from trainarena.wording import counted

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(ALPHABET)}
_KEY_BYTES = 32
_CHECKSUM_BYTES = 2
_CHECKSUM_SALT = b"SS58PRE"


class SS58Error(ValueError):
    """Not an SS58 address of a 32-byte key on the expected network; the message says what is wrong."""


def _base58_decode(text: str) -> bytes:
    bad = sorted({char for char in text if char not in _INDEX})
    if bad:
        raise SS58Error(f"SS58 address {text!r} has characters outside the base58 alphabet: {''.join(bad)!r} "
                        "(base58 has no 0, O, I or l)")
    number = 0
    for char in text:
        number = number * 58 + _INDEX[char]
    leading_zeros = len(text) - len(text.lstrip("1"))  # each leading '1' is a zero byte
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading_zeros + body


def _network_format(data: bytes) -> tuple[int, int]:
    """(prefix length, network format) read from the first byte(s), as Substrate encodes them."""
    first = data[0]
    if first < 64:
        return 1, first
    if first < 128 and len(data) > 1:
        second = data[1]
        lower = ((first << 2) & 0xFF) | (second >> 6)
        return 2, lower | ((second & 0x3F) << 8)
    raise SS58Error(f"SS58 prefix byte {first} is reserved (a valid address starts with a byte below 128)")


def check_ss58(address: str, *, network_format: int) -> str:
    """``address`` unchanged when it is a valid SS58 address of a 32-byte key on ``network_format``;
    SS58Error naming the problem otherwise."""
    text = address.strip()
    if text != address or not text:
        raise SS58Error(f"SS58 address {address!r} is empty or has surrounding spaces")
    data = _base58_decode(text)
    if len(data) < 1 + _KEY_BYTES + _CHECKSUM_BYTES:
        raise SS58Error(f"SS58 address {address!r} is too short ({counted(len(text), 'character')}): a hotkey address "
                        "has 47 or 48 (a 32-byte key)")
    prefix_length, found_format = _network_format(data)
    if len(data) != prefix_length + _KEY_BYTES + _CHECKSUM_BYTES:
        raise SS58Error(f"SS58 address {address!r} does not hold a 32-byte key ({len(data)} bytes decoded); "
                        "give the hotkey's SS58 address, not a public key in hex or a seed")
    payload, checksum = data[:-_CHECKSUM_BYTES], data[-_CHECKSUM_BYTES:]
    expected = hashlib.blake2b(_CHECKSUM_SALT + payload, digest_size=64).digest()[:_CHECKSUM_BYTES]
    if checksum != expected:
        raise SS58Error(f"SS58 address {address!r} fails its checksum (a character is mistyped); copy it again "
                        "from `btcli wallet list`")
    if found_format != network_format:
        raise SS58Error(f"SS58 address {address!r} is for network format {found_format}, not {network_format} "
                        "(Bittensor hotkeys use 42 and start with '5')")
    return address
