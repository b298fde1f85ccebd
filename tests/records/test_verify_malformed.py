"""A bundle anyone may have edited by hand: whatever its files hold, verify reports failures, naming the
file or record, and never crashes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from records_store import read_lines, write_lines

from trainarena.records.verify import verify_directory


def _statement_edit(kind: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    """Edit the first ``kind`` statement's payload in place (its signature then fails too)."""

    def apply(bundle: Path) -> None:
        lines = read_lines(bundle / "entries.jsonl")
        line = next(e for e in lines if e["kind"] == kind)
        statement = json.loads(base64.b64decode(line["envelope"]["payload"]))
        edit(statement)
        line["envelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        write_lines(bundle / "entries.jsonl", lines)

    return apply


def _lines_edit(name: str, edit: Callable[[list[dict[str, Any]]], None]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        lines = read_lines(bundle / name)
        edit(lines)
        write_lines(bundle / name, lines)

    return apply


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda bundle: (bundle / name).write_text(text)


MALFORMED = {
    "manifest not JSON": _write("bundle.json", "{"),
    "manifest a list": _write("bundle.json", "[]"),
    "no public key": lambda bundle: (bundle / "public_key.pem").unlink(),
    "public key garbage": _write("public_key.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
    "entries not JSON": _write("entries.jsonl", "{nope\n"),
    "envelope a string": _lines_edit("entries.jsonl", lambda lines: lines[0].update(envelope="x")),
    "payload not base64": _lines_edit("entries.jsonl", lambda lines: lines[1]["envelope"].update(payload="%%%")),
    "proof not hex": _lines_edit("entries.jsonl", lambda lines: lines[2].update(inclusion_proof=["zz"])),
    "index a string": _lines_edit("entries.jsonl", lambda lines: lines[3].update(index="three")),
    "signatures a string": _lines_edit("entries.jsonl", lambda lines: lines[0]["envelope"].update(signatures="me")),
    "signature keyid null": _lines_edit("entries.jsonl", lambda lines: lines[0]["envelope"]["signatures"][0].update(keyid=None)),
    "payload a list": _lines_edit("entries.jsonl", lambda lines: lines[1]["envelope"].update(payload=["x"])),
    "log id a number": lambda bundle: (bundle / "bundle.json").write_text(
        json.dumps(json.loads((bundle / "bundle.json").read_text()) | {"log_id": 5})),
    "tree head envelope empty": _lines_edit("tree_heads.jsonl", lambda lines: lines[-1].update(envelope={})),
    "no tree heads": _write("tree_heads.jsonl", ""),
    "predicate a list": _statement_edit("decision", lambda s: s.update(predicate=[])),
    "run attempt an object": _statement_edit("run", lambda s: s["predicate"]["run"].update(attempt={"n": 1})),
    "run without exit": _statement_edit("run", lambda s: s["predicate"].pop("exit")),
    "rules unknown": _statement_edit("decision", lambda s: s["predicate"]["rules"].update(group_tasks="many")),
    "round matches a dict": _statement_edit("round", lambda s: s["predicate"].update(matches={})),
    "commitment tasks a string": _statement_edit("commitment", lambda s: s["predicate"].update(tasks="all")),
    "reveal tasks of numbers": _statement_edit("reveal", lambda s: s["predicate"].update(tasks=[1, 2])),
    "subject without digest": _statement_edit("evaluation", lambda s: s.update(subject=[{"name": "x"}])),
    "claims a list": _write("claims.json", "[]"),
    "claims runs of numbers": _write("claims.json", json.dumps({"runs": [1, 2], "champion": None, "weights": {}})),
    "per-example file a dict": lambda bundle: next((bundle / "per_example").glob("*.json")).write_text("{}"),
    "per-example file not JSON": lambda bundle: next((bundle / "per_example").glob("*.json")).write_text("[1,"),
}
# Bytes that are not UTF-8 (QA of the CLI, finding 3: a UnicodeDecodeError traceback for these three files).
NOT_UTF8 = b"\xbb\xff\x00 not text \xc3"


@pytest.mark.parametrize("name", ["tree_heads.jsonl", "entries.jsonl", "public_key.pem"])
def test_a_bundle_file_that_is_not_utf8_is_a_failure_naming_it(bundle: Path, name: str) -> None:
    (bundle / name).write_bytes(NOT_UTF8)
    report = verify_directory(bundle)
    assert not report.ok
    files = next(check for check in report.checks if check.name == "files")
    assert [(f.record, f.message) for f in files.failures] == [(name, "is not UTF-8 text (byte 0: invalid start byte)")]


def test_a_per_example_file_of_the_wrong_shape_says_what_it_must_hold(bundle: Path) -> None:
    """The QA saw "its values hash to None, not to the zz... its name and the signed statements give"."""
    (bundle / "per_example" / "zz.json").write_text('{"a": 1}')
    (bundle / "per_example" / "words.json").write_text('["x", 1]')
    report = verify_directory(bundle)
    said = {f.record: f.message for f in report.failures if f.record.startswith("per_example/")}
    assert said["per_example/zz.json"] == "is not a list of numbers (one score per example): it holds a JSON object"
    assert said["per_example/words.json"] == "is not a list of numbers (one score per example): item 0 is a string"
    assert not any("None" in message for message in said.values())


@pytest.mark.parametrize("edit", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_bundle_fails_verification_without_crashing(bundle: Path, edit: Callable[[Path], None]) -> None:
    edit(bundle)
    report = verify_directory(bundle, artifacts={1: bundle / "missing"})
    assert not report.ok
    assert all(f.record and f.message for f in report.failures)
    json.dumps(report.to_json())  # the --json form writes too


PYTHON_WORDS = ("Error:", "object is", "object has", "subscriptable", "NoneType", "attribute")


def _failures(bundle: Path) -> list[tuple[str, str]]:
    report = verify_directory(bundle)
    assert not report.ok
    failures = [(f.record, f.message) for f in report.failures]
    assert not [m for _, m in failures if any(word in m for word in PYTHON_WORDS)], failures  # words, not Python's
    return failures


def test_a_malformed_claims_json_is_named_with_the_item_and_the_field(bundle: Path) -> None:
    """It blamed the signed commitment ("entry 0 (commitment ...): a field is missing or malformed
    (TypeError: 'int' object is not subscriptable)") for claims.json's entrants (QA 11)."""
    claims = json.loads((bundle / "claims.json").read_text())
    claims["entrants"] = [1, "x", None, {"repo": "r"}, *claims["entrants"]]
    claims["runs"][0].pop("run_id")
    claims["runs"][1]["attempt"] = [1]
    claims["weights"] = []
    (bundle / "claims.json").write_text(json.dumps(claims))
    failures = _failures(bundle)
    assert ("claims.json entrants[0]", "not an object") in failures
    assert ("claims.json entrants[2]", "not an object") in failures
    assert ("claims.json entrants[3]", "no 'name'") in failures
    assert ("claims.json runs[0]", "no 'run_id'") in failures
    assert ("claims.json runs[1]", "'attempt' is [1], not a whole number") in failures
    assert ("claims.json weights", "not an object") in failures
    assert not [record for record, _ in failures if "commitment" in record], failures  # the signed commitment is intact


def test_a_malformed_statement_is_named_in_words(bundle: Path) -> None:
    """"not a trainarena statement: 'NoneType' object has no attribute 'get'" and "(KeyError: 'tournament')"."""
    lines = read_lines(bundle / "entries.jsonl")
    lines[1]["envelope"]["payload"] = "%%%"
    write_lines(bundle / "entries.jsonl", lines)
    _statement_edit("decision", lambda s: s["predicate"].pop("tournament"))(bundle)
    failures = _failures(bundle)
    assert any(r.startswith("entry 1") and m == "not a trainarena statement: its payload is not a JSON object encoded in base64"
               for r, m in failures), failures  # fmt: skip
    assert any(m == "a field is missing: 'tournament'" for _, m in failures), failures
