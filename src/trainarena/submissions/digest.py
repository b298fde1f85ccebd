"""First-level copy detection: a digest of a repository's source that survives cosmetic edits.

Python files are reduced to their token stream without comments, docstrings, blank lines, spacing and
indentation width; other files count byte for byte; documentation files (settings: digest_ignore_*)
do not count. File names and order do not count either, so renaming or moving files does not hide a
copy. Two repositories with the same digest almost surely run the same code. What this does not catch:
renamed identifiers, reordered functions, changed constants; the near-duplicate measure
(submissions.similarity) looks for those.
"""

from __future__ import annotations

import hashlib
import io
import tokenize
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath

DIGEST_VERSION = "trainarena-source-digest-v1"  # change when normalization changes, so old digests never collide
_DROPPED = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.ENCODING})
_STATEMENT_START = frozenset({tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT})


def code_tokens(source: bytes) -> list[tokenize.TokenInfo] | None:
    """The tokens of Python source without comments, docstrings, bare string statements and blank
    lines; None when the file does not tokenize. Shared with the near-duplicate measure (similarity)."""
    try:
        tokens = [t for t in tokenize.tokenize(io.BytesIO(source).readline) if t.type not in _DROPPED]
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        return None
    return list(_without_string_statements(tokens))


def normalized_python(source: bytes) -> bytes:
    """The token stream of Python source without comments, docstrings or layout; the raw bytes when
    the file does not tokenize (a copy of a broken file is still a copy)."""
    kept = code_tokens(source)
    if kept is None:
        return source
    # INDENT/DEDENT keep their type, not their text: 2-space and 4-space indentation are the same code.
    return "\x00".join(
        tokenize.tok_name[t.type] if t.type in (tokenize.INDENT, tokenize.DEDENT) else t.string for t in kept
    ).encode()


def _without_string_statements(tokens: list[tokenize.TokenInfo]) -> Iterator[tokenize.TokenInfo]:
    """Drop statements made of string literals only: docstrings and bare strings do nothing."""
    index = 0
    previous_type = tokenize.NEWLINE
    while index < len(tokens):
        end = index
        while end < len(tokens) and _is_plain_string(tokens[end]):
            end += 1
        at_statement_start = previous_type in _STATEMENT_START
        if end > index and at_statement_start and end < len(tokens) and tokens[end].type == tokenize.NEWLINE:
            index = end + 1  # skip the strings and their NEWLINE
            continue
        previous_type = tokens[index].type
        yield tokens[index]
        index += 1


def _is_plain_string(token: tokenize.TokenInfo) -> bool:
    """A string literal that is not an f-string (an f-string statement can call functions)."""
    prefix = token.string[: len(token.string) - len(token.string.lstrip("rRbBuUfF"))]
    return token.type == tokenize.STRING and "f" not in prefix.lower()


def file_digest(path: str, content: bytes) -> str:
    normalized = normalized_python(content) if PurePosixPath(path).suffix == ".py" else content
    return hashlib.sha256(normalized).hexdigest()


def is_digest_ignored(path: str, ignore_suffixes: Iterable[str], ignore_names: Iterable[str]) -> bool:
    name = PurePosixPath(path).name
    return name in set(ignore_names) or name.lower().endswith(tuple(s.lower() for s in ignore_suffixes))


def source_digest(files: Iterable[tuple[str, bytes]], *, ignore_suffixes: Iterable[str] = (),
                  ignore_names: Iterable[str] = ()) -> str:
    """sha256 over the sorted per-file digests of ``(path, content)`` pairs: independent of file order
    and names, sensitive to what the code does."""
    suffixes, names = tuple(ignore_suffixes), tuple(ignore_names)
    digests = sorted(
        file_digest(path, content) for path, content in files if not is_digest_ignored(path, suffixes, names)
    )
    return hashlib.sha256("\n".join([DIGEST_VERSION, *digests]).encode()).hexdigest()
