"""``trainarena verify DIR``: check an exported bundle (``records/bundle.py``) offline, with no store.

Trust rests on one thing: the operator's public key (``--key PEM``; without it, the bundle's own
``public_key.pem``, and the report says so). Everything else is checked against it:

- the log: every tree head's signature, sizes only growing, timestamps never going back, a consistency
  proof between each head and the next (the log was only appended to); every entry's signature, its
  statement's shape and kind, and its inclusion proof against the latest head (its leaf hash, at its
  index, under that root);
- the records: each evaluation names its run statement (log index and payload digest), each round
  outcome its evaluation (same score, same per-example digest), the decision (or cancellation) its
  rounds, the reveal (or cancellation) its commitment; each per-example file has the digest the
  statements give;
- the decision: the bracket, the boss round and the champion are replayed from the round statements
  with the pure engine (``engine.bracket.replay``) and the weights recomputed
  (``engine.weights.tournament_weights``) under the rules the decision names; any field that differs
  is named; a cancelled tournament's bundle holds its signed cancellation instead, which the report
  notes (when, why), its rounds replayed as far as they went and nothing of it logged after it;
- the hidden data: the commitment was logged before every run; in a pool tournament every run and
  evaluation of a task used the hidden split the commitment named, and the reveal opens every
  committed split-seed hash;
- the database: ``claims.json`` (what the operator's database said at export) against the signed
  statements: each run's status, score and artifact digest, the champion, the weights;
- artifacts, when given (``--artifact RUN_ID=PATH``): the folder's files against the run statement's
  subjects (changed, missing and extra files);
- audits of the tournament's runs in the bundle: each names a run statement the bundle holds, of the
  run it says, on the same task; each is reported with both scores.

What it cannot show: that the operator ran what the statements say (the records are the operator's
word, signed; ``trainarena audit`` re-executes a run), nor that no other log was kept for others.
The checks themselves are pure functions over the bundle's parsed files (``verify_log`` and
``verify_records``); this module reads the files and assembles the report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainarena.records.bundle import CLAIMS, ENTRIES, MANIFEST, PER_EXAMPLE, PUBLIC_KEY, TREE_HEADS
from trainarena.records.checks import Bundle, CheckResult, Failure
from trainarena.records.provenance import file_subjects
from trainarena.records.signing import public_key_from_pem
from trainarena.records.verify_log import check_log
from trainarena.records.verify_records import check_records

# Where the key came from when no --key was given: the bundle vouches for itself, which proves nothing
# about who signed it; the report says so.
BUNDLED_KEY = "the bundle's public_key.pem"

__all__ = ["BUNDLED_KEY", "Bundle", "CheckResult", "Failure", "Report", "read_bundle", "verify_bundle", "verify_directory"]


@dataclass(frozen=True)
class Report:
    tournament: dict[str, Any]
    keyid: str | None
    key_source: str
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Failure]:
        return [failure for check in self.checks for failure in check.failures]

    def to_json(self) -> dict[str, Any]:
        key = {"keyid": self.keyid, "source": self.key_source, "trusted": self.key_source != BUNDLED_KEY}
        return {"ok": self.ok, "tournament": self.tournament, "key": key,
                "checks": [check.to_json() for check in self.checks]}


# --- The shell: files in ---------------------------------------------------------------------------


def _json_file(path: Path, problems: list[Failure], name: str | None = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        problems.append(Failure(name or path.name, "missing from the bundle"))
    except (OSError, ValueError) as error:
        problems.append(Failure(name or path.name, f"does not read as JSON ({error})"))
    return None


def _text(path: Path, problems: list[Failure], *, missing: str | None = "missing from the bundle") -> str | None:
    """The UTF-8 text of a bundle file, or None with its problem listed (``missing``, when it is not
    there: None lists nothing). A bundle is untrusted input: bytes that are not UTF-8 are a failure
    naming the file, not a UnicodeDecodeError."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing is not None:
            problems.append(Failure(path.name, missing))
    except UnicodeDecodeError as error:
        problems.append(Failure(path.name, f"is not UTF-8 text (byte {error.start}: {error.reason})"))
    except OSError as error:
        problems.append(Failure(path.name, str(error)))
    return None


def _json_lines(path: Path, problems: list[Failure]) -> list[dict[str, Any]]:
    text = _text(path, problems)
    if text is None:
        return []
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            value = json.loads(line)
        except ValueError as error:
            problems.append(Failure(f"{path.name} line {number}", f"does not read as JSON ({error})"))
            continue
        if isinstance(value, dict):
            lines.append(value)
        else:
            problems.append(Failure(f"{path.name} line {number}", "is not a JSON object"))
    return lines


def read_bundle(directory: Path) -> Bundle:
    """The bundle in ``directory``, every file parsed; what cannot be read is listed, not raised."""
    problems: list[Failure] = []
    manifest = _json_file(directory / MANIFEST, problems)
    if manifest is not None and not isinstance(manifest, dict):
        problems.append(Failure(MANIFEST, "is not a JSON object"))
    manifest_problem = next((failure.message for failure in problems if failure.record == MANIFEST), None)
    pem = _text(directory / PUBLIC_KEY, problems, missing=None)  # none: the key check says so, or --key stands in
    per_example = {}
    folder = directory / PER_EXAMPLE
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        value = _json_file(path, problems, f"{PER_EXAMPLE}/{path.name}")
        if value is not None:
            per_example[path.stem] = value
    return Bundle(manifest=manifest if isinstance(manifest, dict) else {}, public_key_pem=pem,
                  entries=_json_lines(directory / ENTRIES, problems), tree_heads=_json_lines(directory / TREE_HEADS, problems),
                  per_example=per_example, claims=_json_file(directory / CLAIMS, problems), problems=problems,
                  manifest_problem=manifest_problem)


def verify_directory(directory: Path, trusted_key: Path | None = None, artifacts: Mapping[int, Path] | None = None) -> Report:
    """Verify the bundle in ``directory``; ``trusted_key`` is a public key PEM file to check it against,
    ``artifacts`` maps run ids to artifact folders to check against their run statements. A
    ``trusted_key`` that is no Ed25519 public key PEM raises OperatorKeyError (OSError when it cannot
    be read): with no key to check against, there is no verdict about the bundle."""
    trusted = None if trusted_key is None else Path(trusted_key).read_text(errors="replace")
    if trusted is not None:
        public_key_from_pem(trusted)
    listings = {run_id: file_subjects(Path(path)) if Path(path).is_dir() else None for run_id, path in (artifacts or {}).items()}
    source = BUNDLED_KEY if trusted_key is None else f"--key {trusted_key}"
    return verify_bundle(read_bundle(Path(directory)), trusted, source, listings)


# --- The core: checks over parsed files ------------------------------------------------------------


def verify_bundle(bundle: Bundle, trusted_pem: str | None, key_source: str,
                  artifacts: Mapping[int, list[dict[str, Any]] | None] | None = None) -> Report:
    """Every check of the module's docstring over ``bundle`` (pure). ``artifacts`` maps a run id to the
    listing of its artifact folder (``provenance.file_subjects``; None when it is not a folder)."""
    files = CheckResult("files", "bundle files present and readable", checked=5 + len(bundle.per_example))
    files.failures.extend(bundle.problems)
    log = check_log(bundle, trusted_pem)
    checks = [files, *log.checks, *check_records(bundle, log.entries, artifacts)]
    tournament = bundle.manifest.get("tournament") if isinstance(bundle.manifest.get("tournament"), dict) else {}
    return Report(tournament, log.keyid, key_source, checks)
