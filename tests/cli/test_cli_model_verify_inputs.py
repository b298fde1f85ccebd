"""`trainarena models verify` on files a person saved by hand: a model JSON, a run's record or a public
key that is cut short, edited or crafted (QA: a list where an object belongs, a number for a digest,
invalid JSON ended in a Python traceback). Each ends with one line naming the option, the file and the
field (exit 2; with --json a JSON error on stdout), never a traceback, whatever the file holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from one_line_error import one_line_error
from typer.testing import CliRunner
from verify_files import WEIGHTS, Saved, with_change, without

from trainarena.cli import app
from trainarena.records.signing import init_key
from trainarena.registry import verify_input


@pytest.fixture
def saved(tmp_path: Path) -> Saved:
    return Saved(tmp_path)


def _json_error(args: list[str], code: int = 2) -> str:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and result.exit_code == code, answer
    return answer["error"]


def test_the_saved_files_verify(saved: Saved) -> None:
    result = CliRunner().invoke(app, [*saved.args(), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["linked_to_record"] == [WEIGHTS]


MODELS = [
    (lambda m: [m], "the model is a list, not an object"),
    (lambda m: with_change(m, 5, "digest"), "digest is an integer, not a string"),
    (lambda m: without(m, "digest"), "digest is missing"),
    (lambda m: with_change(m, {"path": "x"}, "files"), "files is an object, not a list"),
    (lambda m: with_change(m, "README.md", "files", 0), "files[0] is a string, not an object"),
    (lambda m: without(m, "files", 1, "sha256"), "files[1].sha256 is missing"),
    (lambda m: with_change(m, ["a"], "files", 0, "artifact_path"), "files[0].artifact_path is a list, not a string or null"),
    (lambda m: with_change(m, "7", "run_id"), "run_id is a string, not an integer or null"),
    (lambda m: with_change(m, True, "run_id"), "run_id is true or false, not an integer or null"),
    (lambda m: with_change(m, 1.5, "artifact_digest"), "artifact_digest is a number, not a string or null"),
    (lambda m: with_change(m, "a\ud800", "files", 1, "path"), "files[1].path holds a lone surrogate (\\ud800), not text"),
]


@pytest.mark.parametrize(("change", "named"), MODELS, ids=[named.split(" ")[0] for _, named in MODELS])
def test_a_malformed_model_json_is_named_field_and_file(saved: Saved, change, named: str) -> None:  # noqa: ANN001
    args = saved.args(model=change(saved.model))
    model_file = saved.root / "model.json"
    line = one_line_error(CliRunner(), args)
    assert line == f"error: --model-json {model_file}: {named} (not a model as GET /v1/models/{{id}} answers it)"
    assert _json_error(args) == line.removeprefix("error: ")


RECORDS = [
    (lambda s: [s.entry], "the record is a list, not an object"),
    (lambda s: {"envelope": "x"}, "envelope is a string, not an object"),
    (lambda s: without(s.entry, "envelope", "payload"), "envelope.payload is missing"),
    (lambda s: with_change(s.entry, {"keyid": "k"}, "envelope", "signatures"), "envelope.signatures is an object, not a list"),
    (lambda s: with_change(s.entry, 4, "envelope", "signatures", 0, "sig"), "envelope.signatures[0].sig is an integer, not a string"),
    (lambda s: s.unsigned(with_change(s.statement, {"id": 7}, "subject")), "statement.subject is an object, not a list"),
    (lambda s: s.unsigned(with_change(s.statement, "x", "subject", 0, "digest")), "statement.subject[0].digest is a string, not an object"),
    (lambda s: s.unsigned(without(s.statement, "subject", 0, "digest", "sha256")), "statement.subject[0].digest.sha256 is missing"),
    (lambda s: s.unsigned(with_change(s.statement, [], "predicate")), "statement.predicate is a list, not an object"),
    (lambda s: s.unsigned(with_change(s.statement, None, "predicate", "run")), "statement.predicate.run is null, not an object"),
    (lambda s: s.unsigned(with_change(s.statement, "7", "predicate", "run", "id")), "statement.predicate.run.id is a string, not an integer"),
    (lambda s: s.unsigned(with_change(s.statement, 1, "predicate", "artifact_sha256")), "statement.predicate.artifact_sha256 is an integer, not a string or null"),
    (lambda s: s.unsigned({**s.statement, "predicateType": "https://trainarena.dev/attestation/round/v1"}),
     "the record is not a run statement (`GET /v1/records/entries?job_id=ID&kind=run` lists your job's)"),
    (lambda s: with_change(s.entry, "bm90IGpzb24=", "envelope", "payload"), "envelope.payload is not a JSON statement encoded in base64"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "named"), RECORDS, ids=[named.split(" ")[0] + str(i) for i, (_, named) in enumerate(RECORDS)])
def test_a_malformed_record_is_named_field_and_file(saved: Saved, change, named: str) -> None:  # noqa: ANN001
    # The statement's own fields are read without --key (their envelope's signature no longer holds).
    args = saved.args(entry=change(saved), key="envelope.signatures" in named)
    line = one_line_error(CliRunner(), args)
    assert line == f"error: --record {saved.root / 'record.json'}: {named}"
    assert _json_error(args) == line.removeprefix("error: ")


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"{", "is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        (b"", "is not JSON (Expecting value: line 1 column 1 (char 0))"),
        (b"\xff\xfe{}", "is not UTF-8 text (byte 0)"),
        (b"[" * 100_000 + b"]" * 100_000, "is JSON nested too deeply to be an answer of the API"),
        (b'{"run_id": 1' + b"0" * 5000 + b"}", "is not JSON (Exceeds the limit (4300 digits) for integer string conversion: value has 5001 digits; use sys.set_int_max_str_digits() to increase the limit)"),
    ],
    ids=["cut", "empty", "not-utf8", "nested", "huge-int"],
)
def test_a_file_that_is_no_json_is_named(saved: Saved, content: bytes, named: str) -> None:
    for option, name, files in (("--model-json", "model.json", {"model": content}), ("--record", "record.json", {"entry": content})):
        assert one_line_error(CliRunner(), saved.args(**files)) == f"error: {option} {saved.root / name}: {named}"


def test_a_huge_file_or_a_device_is_refused_unread(saved: Saved, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_input, "MAX_INPUT_BYTES", 1024)
    line = one_line_error(CliRunner(), saved.args(model=b" " * 1025))
    assert line == f"error: --model-json {saved.root / 'model.json'}: is larger than 0 MiB, far more than any saved answer of the API"
    args = saved.args()
    args[args.index("--record") + 1] = "/dev/zero"  # never ends: never read
    assert one_line_error(CliRunner(), args) == "error: --record /dev/zero: is not a regular file"


@pytest.mark.parametrize("pem", [b"", b"not a key", b"\xff\x00", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"])
def test_a_bad_key_is_named(saved: Saved, pem: bytes) -> None:
    saved.write("key.pem", pem)
    line = one_line_error(CliRunner(), saved.args())
    assert line.startswith(f"error: --key {saved.root / 'key.pem'}: ")
    assert line.endswith(("not a PEM public key", "is not UTF-8 text (byte 0)"))
    assert _json_error(saved.args()) == line.removeprefix("error: ")


def test_a_record_signed_with_another_key_is_not_trusted(saved: Saved) -> None:
    saved.write("key.pem", init_key(saved.root / "other.key").public_pem())
    assert _json_error(saved.args(), code=1).startswith("the record cannot be trusted: not signed by key")


def test_names_and_values_from_the_files_are_printed_as_plain_text(saved: Saved) -> None:
    """A file name in the model JSON is printed as text: brackets are no markup (a closing tag without
    its opening one was a rich MarkupError), a control character no escape sequence."""
    model = with_change(saved.model, "[/bold]\x1b[2J.bin", "files", 0, "path")
    result = CliRunner().invoke(app, saved.args(model=model))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "differs: [/bold]\\x1b[2J.bin is missing" in result.stdout


def test_each_difference_wraps_within_80_columns(saved: Saved) -> None:
    """A difference naming two digests (about 170 characters) ran past 80 columns, the terminal carrying it
    on from column 0 (QA): it wraps, its continuation indented under the first line's text."""
    (saved.folder / "README.md").write_text("card, edited")
    result = CliRunner().invoke(app, saved.args(), env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 1 and max(len(line) for line in lines) <= 80, result.stdout
    first = next(i for i, line in enumerate(lines) if line.startswith("  differs: the folder's digest is"))
    assert lines[first + 1].startswith("    ") and not lines[first + 1].lstrip().startswith("differs"), result.stdout
    assert "NOT verified: 2 difference(s)" in lines[-1]


# --- Whatever a file holds: never a traceback ------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=()), max_size=8)  # lone surrogates too: JSON escapes them
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=12,
)


def _places(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON document, as the keys and indexes that lead there."""
    inner = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [path, *(place for key, item in inner for place in _places(item, (*path, key)))]


@st.composite
def _mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one place replaced by any JSON value, or removed."""
    place = draw(st.sampled_from(_places(document)))
    if not place:
        return draw(JSON)
    if draw(st.booleans()):
        return with_change(document, draw(JSON), *place)
    return without(document, *place)


@pytest.fixture(scope="module")
def saved_once(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    return Saved(tmp_path_factory.mktemp("saved"))


def _never_a_traceback(args: list[str]) -> None:
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output
        if extra:
            assert isinstance(json.loads(result.stdout)["ok"], bool)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_changed_model_or_record_never_ends_in_a_traceback(saved_once: Saved, data: st.DataObject) -> None:
    model = data.draw(_mutated(saved_once.model), label="model")
    statement = data.draw(_mutated(saved_once.statement), label="statement")
    entry = data.draw(_mutated(saved_once.unsigned(statement)), label="entry")
    _never_a_traceback(saved_once.args(model=model, entry=entry, key=False))
    _never_a_traceback(saved_once.args(entry=data.draw(_mutated(saved_once.entry), label="signed entry")))


@settings(max_examples=40, deadline=None)
@given(content=st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()), key=st.none() | st.binary(max_size=64))
def test_any_bytes_never_end_in_a_traceback(saved_once: Saved, content: bytes, key: bytes | None) -> None:
    saved_once.write("key.pem", saved_once.key_pem if key is None else key)
    try:
        _never_a_traceback(saved_once.args(model=content))
        _never_a_traceback(saved_once.args(entry=content))
    finally:
        saved_once.write("key.pem", saved_once.key_pem)
