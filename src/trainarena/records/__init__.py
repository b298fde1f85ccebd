"""Verifiable records: every run, evaluation and tournament decision as a signed in-toto statement in an
append-only, RFC 6962 transparency log, exported as a bundle anyone can check offline (docs/records.md).

Pure where it can be (Merkle proofs, statements, verification of a bundle); the log's storage and the
audit's re-execution are the thin shells around it.
"""
