"""Reading a registered repository's license from its tree (and the manifest's `license` key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_data import MIT_TEXT

from trainarena.registry.licenses import NO_LICENSE, detect_license, license_from_text
from trainarena.submissions import RegistrationError, parse_manifest

APACHE = "                                 Apache License\n                           Version 2.0, January 2004\n"
GPL3 = "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n"
BSD3 = ("Redistribution and use in source and binary forms, with or without modification... "
        "3. Neither the name of the copyright holder nor")  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [(MIT_TEXT, "mit"), (APACHE, "apache-2.0"), (GPL3, "gpl-3.0"),
                                                 (BSD3, "bsd-3-clause"), ("All rights reserved.", "other")])  # fmt: skip
def test_license_texts_are_named_as_the_hub_names_them(text: str, expected: str) -> None:
    assert license_from_text(text) == expected


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return tmp_path


def test_a_license_file_wins_over_the_declared_license(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"LICENSE.md": APACHE, "pyproject.toml": '[project]\nlicense = "MIT"\n'})
    info = detect_license(tree)
    assert (info.license, info.found_in, info.describe()) == ("apache-2.0", "LICENSE.md", "apache-2.0 (LICENSE.md)")


@pytest.mark.parametrize(("files", "expected"), [
    ({"trainarena.toml": '[trainarena]\ncontract = 1\nentrypoint = "t.py"\nlicense = "GPL-3.0-only"\n'}, ("gpl-3.0", "trainarena.toml")),
    ({"pyproject.toml": '[project]\nname = "x"\nlicense = "MIT"\n'}, ("mit", "pyproject.toml")),
    ({"pyproject.toml": '[project]\nlicense = {text = "Apache-2.0"}\n'}, ("apache-2.0", "pyproject.toml")),
    ({"COPYING": GPL3}, ("gpl-3.0", "COPYING")),
])  # fmt: skip
def test_the_license_is_read_from_the_manifest_pyproject_or_copying(tmp_path: Path, files, expected) -> None:
    info = detect_license(_tree(tmp_path, files))
    assert (info.license, info.found_in) == expected and info.found


def test_no_license_is_flagged(tmp_path: Path) -> None:
    info = detect_license(_tree(tmp_path, {"train.py": "pass\n", "pyproject.toml": "[project]\nname = 'x'\n"}))
    assert not info.found and info.license is None and info.describe() == NO_LICENSE == "no license found"


def test_the_manifest_takes_an_optional_license_string() -> None:
    manifest = parse_manifest('[trainarena]\ncontract = 1\nentrypoint = "train.py"\nlicense = "MIT"\n')
    assert manifest.license == "MIT"
    assert parse_manifest('[trainarena]\ncontract = 1\nentrypoint = "train.py"\n').license is None
    with pytest.raises(RegistrationError, match=r'license must be an SPDX id in a string, e.g. license = "MIT"; got 3'):
        parse_manifest('[trainarena]\ncontract = 1\nentrypoint = "train.py"\nlicense = 3\n')


@pytest.mark.parametrize(("files", "refused"), [
    ({"LICENSE": MIT_TEXT}, None),
    ({"pyproject.toml": '[project]\nlicense = "GPL-3.0-or-later"\n'}, None),
    ({"pyproject.toml": '[project]\nlicense = "LicenseRef-Proprietary"\n'}, "its license licenseref-proprietary (pyproject.toml) is not one"),
    ({"LICENSE": "All rights reserved."}, "its license file LICENSE is not one trainarena recognises"),
    ({"train.py": "pass\n"}, "its repository names no license"),
])  # fmt: skip
def test_only_a_license_that_lets_anyone_redistribute_the_code_lets_it_be_served(tmp_path: Path, files, refused) -> None:
    refusal = detect_license(_tree(tmp_path, files)).redistribution_refusal()
    assert refusal is None if refused is None else refusal.startswith(refused)
