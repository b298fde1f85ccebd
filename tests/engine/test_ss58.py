"""The SS58 check: real addresses pass; every kind of damage is named."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainarena.engine.ss58 import ALPHABET, SS58Error, check_ss58

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
POLKADOT_ALICE = "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5"  # the same key, network format 0


def _encode(prefix: bytes, key: bytes) -> str:
    """An SS58 address written from the spec, independently of the module under test."""
    payload = prefix + key
    data = payload + hashlib.blake2b(b"SS58PRE" + payload, digest_size=64).digest()[:2]
    number, text = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        text = ALPHABET[digit] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def test_known_addresses_pass() -> None:
    assert check_ss58(ALICE, network_format=42) == ALICE
    assert check_ss58(BOB, network_format=42) == BOB
    assert check_ss58(POLKADOT_ALICE, network_format=0) == POLKADOT_ALICE


@given(st.binary(min_size=32, max_size=32))
def test_any_key_encoded_for_format_42_passes(key: bytes) -> None:
    address = _encode(bytes([42]), key)
    assert check_ss58(address, network_format=42) == address


@given(st.binary(min_size=32, max_size=32), st.integers(0, 47), st.sampled_from(ALPHABET))
def test_one_changed_character_is_refused(key: bytes, position: int, char: str) -> None:
    address = _encode(bytes([42]), key)
    position %= len(address)
    damaged = address[:position] + char + address[position + 1 :]
    if damaged != address:
        with pytest.raises(SS58Error):
            check_ss58(damaged, network_format=42)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (ALICE[:-1] + "Z", "checksum"),
        (ALICE.replace("G", "0", 1), "outside the base58 alphabet"),
        (ALICE[:30], "too short"),
        (_encode(bytes([42]), b"\x01" * 33), "does not hold a 32-byte key"),
        (POLKADOT_ALICE, "network format 0, not 42"),
        (f" {ALICE}", "surrounding spaces"),
        ("", "empty"),
    ],
)
def test_damage_is_named(address: str, reason: str) -> None:
    with pytest.raises(SS58Error, match=reason):
        check_ss58(address, network_format=42)


def test_two_byte_network_prefix_is_read() -> None:
    # Format 64..16383 takes two bytes; 1284 (0x504) is encoded as in Substrate's ss58-registry.
    fmt = 1284
    first = ((fmt & 0b1111_1100) >> 2) | 0b0100_0000
    second = (fmt >> 8) | ((fmt & 0b11) << 6)
    address = _encode(bytes([first, second]), b"\x07" * 32)
    assert check_ss58(address, network_format=fmt) == address
    with pytest.raises(SS58Error, match="network format 1284, not 42"):
        check_ss58(address, network_format=42)
