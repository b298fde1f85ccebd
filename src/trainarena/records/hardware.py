"""Hardware attestation: where a confidential-computing GPU's signed report would go into a run's record.

A provider returns what the run statement embeds under ``hardware_attestation``. The only provider
that ships is :class:`NoHardwareAttestation`, which says plainly that no report was available: a
verifier then knows the run's integrity rests on the operator's signature alone. A real provider (for
example one reading an NVIDIA confidential-computing attestation report and its certificate chain)
implements the same method and is chosen by ``records.hardware_attestation``; none is faked here.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["HardwareAttestation", "NoHardwareAttestation", "hardware_provider"]


class HardwareAttestation(Protocol):
    name: str

    def report(self, devices: tuple[int, ...], nonce: str) -> dict[str, Any]:
        """The attestation report of ``devices`` bound to ``nonce`` (the run's identity), as JSON data:
        at least ``provider`` and ``available``; when available, the report and how to check it."""
        ...


class NoHardwareAttestation:
    name = "none"

    def report(self, devices: tuple[int, ...], nonce: str) -> dict[str, Any]:
        return {"provider": self.name, "available": False,
                "reason": "no hardware attestation provider is configured (records.hardware_attestation = none)"}


_PROVIDERS: dict[str, type[NoHardwareAttestation]] = {NoHardwareAttestation.name: NoHardwareAttestation}


def hardware_provider(name: str) -> HardwareAttestation:
    try:
        return _PROVIDERS[name]()
    except KeyError:
        raise ValueError(f"unknown hardware attestation provider {name!r}; known: {', '.join(sorted(_PROVIDERS))}") from None
