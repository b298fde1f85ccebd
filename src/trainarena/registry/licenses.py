"""Which license a registered script's repository is under, read from its tree: a license file at the
root (LICENSE, LICENSE.md, LICENSE.txt, COPYING), else ``license`` in ``trainarena.toml``'s
``[trainarena]`` table, else ``[project] license`` in ``pyproject.toml``. Named as a Hugging Face Hub
license id (``mit``, ``apache-2.0``...), or ``other`` for a license file whose text is not recognised.
Recognising a text is a heuristic on its well-known opening phrases, not a legal reading.

Whether the platform may hand a champion's code to others (``GET /v1/champions/{name}/code``, the
dashboard's download) follows from the license alone: one of :data:`REDISTRIBUTABLE` lets anyone
redistribute the code (the archive carries the tree's license file or declaration along, as they ask);
``other`` (a text not recognised), a declared id not listed, or no license at all does not, and the
code is not served: without a license nobody but its author may copy it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "COPYING", "COPYING.md")
NO_LICENSE = "no license found"
OTHER = "other"

# (phrases that must all appear, Hub id), most specific first.
_TEXT_MARKERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("apache license", "version 2.0"), "apache-2.0"),
    (("gnu affero general public license",), "agpl-3.0"),
    (("gnu lesser general public license", "version 3"), "lgpl-3.0"),
    (("gnu lesser general public license", "version 2.1"), "lgpl-2.1"),
    (("gnu general public license", "version 3"), "gpl-3.0"),
    (("gnu general public license", "version 2"), "gpl-2.0"),
    (("mozilla public license", "2.0"), "mpl-2.0"),
    (("permission is hereby granted, free of charge",), "mit"),
    (("redistribution and use in source and binary forms", "neither the name"), "bsd-3-clause"),
    (("redistribution and use in source and binary forms",), "bsd-2-clause"),
    (("free and unencumbered software released into the public domain",), "unlicense"),
)

# Hub ids of licenses under which anyone may redistribute the code unchanged: the open-source licenses
# recognised above and the common ones a manifest or pyproject declares (SPDX ids as the Hub names them).
# Non-commercial or no-derivatives licenses are left out: the platform is not bound to non-commercial use.
REDISTRIBUTABLE = frozenset({
    "0bsd", "afl-3.0", "agpl-3.0", "apache-2.0", "artistic-2.0", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "bsl-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc0-1.0", "ecl-2.0", "epl-1.0", "epl-2.0",
    "eupl-1.2", "gpl-2.0", "gpl-3.0", "isc", "lgpl-2.1", "lgpl-3.0", "mit", "mpl-2.0", "ms-pl", "osl-3.0",
    "postgresql", "unlicense", "upl-1.0", "zlib",
})  # fmt: skip


@dataclass(frozen=True)
class LicenseInfo:
    license: str | None  # a Hub license id; None when none was found
    found_in: str | None  # the file it was read from (e.g. LICENSE, pyproject.toml); None when none

    @property
    def found(self) -> bool:
        return self.license is not None

    def describe(self) -> str:
        """``mit (LICENSE)``, or ``no license found``."""
        return f"{self.license} ({self.found_in})" if self.found else NO_LICENSE

    def redistribution_refusal(self) -> str | None:
        """Why the code under this license may not be handed to others (module docstring); None when it may."""
        if self.license is None:
            return ("its repository names no license (no LICENSE or COPYING file, no `license` in trainarena.toml or "
                    "pyproject.toml), and code without one may not be copied by anyone but its author")
        if self.license == OTHER:
            return (f"its license file {self.found_in} is not one trainarena recognises as letting anyone redistribute "
                    "the code; read it at the repository")
        if self.license not in REDISTRIBUTABLE:
            return (f"its license {self.license} ({self.found_in}) is not one trainarena knows to let anyone "
                    "redistribute the code")
        return None


def license_from_text(text: str) -> str:
    """The Hub id of a license file's text; ``other`` when not recognised.

    >>> license_from_text("MIT License\\n\\nPermission is hereby granted, free of charge, to any person")
    'mit'
    """
    lowered = " ".join(text.lower().split())
    return next((hub_id for phrases, hub_id in _TEXT_MARKERS if all(p in lowered for p in phrases)), OTHER)


def hub_license_id(spdx: str) -> str:
    """An SPDX identifier as the Hub names it: ``GPL-3.0-only`` -> ``gpl-3.0``, ``MIT`` -> ``mit``."""
    return spdx.strip().lower().removesuffix("-only").removesuffix("-or-later")


def _declared(path: Path, table: str) -> str | None:
    """``license`` of ``[table]`` in a TOML file: a string, or ``{text = ...}`` (``{file = ...}`` names a
    file, which the license files cover)."""
    try:
        section = tomllib.loads(path.read_text(encoding="utf-8")).get(table, {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    value = section.get("license") if isinstance(section, dict) else None
    if isinstance(value, dict):
        value = value.get("text")
    return value if isinstance(value, str) and value.strip() else None


def detect_license(tree: Path) -> LicenseInfo:
    """The license of the repository tree at ``tree`` (see the module's docstring)."""
    for name in LICENSE_FILES:
        path = tree / name
        if path.is_file() and not path.is_symlink():
            return LicenseInfo(license_from_text(path.read_text(encoding="utf-8", errors="replace")), name)
    for name, table in (("trainarena.toml", "trainarena"), ("pyproject.toml", "project")):
        path = tree / name
        if path.is_file() and not path.is_symlink() and (declared := _declared(path, table)) is not None:
            return LicenseInfo(hub_license_id(declared), name)
    return LicenseInfo(None, None)
