"""The page headers of an uploaded parquet file, read before any page is decoded.

pyarrow sizes its buffers from what each page header declares: the buffer a page decompresses into
is ``uncompressed_page_size`` bytes (up to 2 GiB a page), and a dictionary page's values are allocated
for its ``num_values`` before they are read (up to 2^31 values of 8 or 16 bytes). A header that lies
made pyarrow 26 allocate 2 GiB for a 150 kB file before it found that the page decompressed to less.
The footer's per-column totals, which ``jobs.archives`` checks, are not what the reader trusts, so each
page header is read here (Thrift compact protocol, the few fields needed) and the file refused when:

- a page declares sizes below 0, or its stored bytes run past its column chunk;
- the pages' declared uncompressed sizes together pass the limit (the caller's refusal by size: no page
  is then larger than the limit);
- a dictionary page declares more values than its declared bytes can hold (each value takes at least
  its fixed width, 4 bytes of length for a byte array).

A header's other fields are skipped without being kept; a header longer than ``MAX_HEADER_BYTES`` (what
pyarrow itself allows) or nested deeper than ``MAX_DEPTH`` is refused. What is left to the reader: a
data page's ``num_values``, read a batch at a time (``jobs.archives`` counts the decoded batches).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MAX_HEADER_BYTES = 16 << 20  # pyarrow's own default bound on a page header (ReaderProperties)
MAX_DEPTH = 16
_WINDOW = 1 << 16
DICTIONARY_PAGE = 2
# Least bytes one value of each physical type takes in a dictionary page (PLAIN encoding).
_VALUE_WIDTH = {"BOOLEAN": 0, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8, "BYTE_ARRAY": 4}
# Thrift compact protocol types.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)


class PageHeaderError(ValueError):
    """A page header that is malformed, or declares what the file cannot hold; the message says which."""


@dataclass(frozen=True)
class PageHeader:
    kind: int  # PageType: 0 data, 1 index, 2 dictionary, 3 data v2
    uncompressed_size: int
    compressed_size: int
    num_values: int | None  # of a dictionary page (None for the others)
    length: int  # bytes of the header itself


def declared_uncompressed_bytes(path: Path, metadata: Any, limit: int) -> int:
    """The bytes the pages of the parquet file at ``path`` (its ``metadata``, pyarrow's FileMetaData)
    declare they decompress to, every header checked (module docstring; PageHeaderError at the first
    refused), counted until they pass ``limit``."""
    total = 0
    with path.open("rb") as stream:
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                chunk = metadata.row_group(group).column(column)
                start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
                width = _dictionary_value_width(metadata.schema.column(column))
                total += _chunk_pages(
                    stream, start, start + chunk.total_compressed_size, width, limit - total, chunk.path_in_schema
                )
                if total > limit:
                    return total
    return total


def _dictionary_value_width(column: Any) -> int:
    if column.physical_type == "FIXED_LEN_BYTE_ARRAY":
        return column.length
    return _VALUE_WIDTH.get(column.physical_type, 0)


def _chunk_pages(stream: IO[bytes], start: int, end: int, width: int, room: int, column: str) -> int:
    """The declared uncompressed bytes of the pages of one column chunk (``start`` to ``end``)."""
    total = 0
    position = start
    while position < end:
        header = _read_header(stream, position, end)
        where = f"column {column!r}, the page at byte {position:,}"
        if header.uncompressed_size < 0 or header.compressed_size < 0:
            raise PageHeaderError(f"{where} declares a size below 0")
        position += header.length + header.compressed_size
        if position > end:
            raise PageHeaderError(f"{where} runs past its column chunk (byte {end:,})")
        total += header.uncompressed_size
        if total > room:  # no later page is read: the caller refuses the file by its size
            return total
        if header.num_values is not None and header.num_values * width > header.uncompressed_size:
            raise PageHeaderError(f"{where} is a dictionary of {header.num_values:,} values declared in "
                                  f"{header.uncompressed_size:,} bytes, fewer than they take")  # fmt: skip
    return total


def _read_header(stream: IO[bytes], position: int, end: int) -> PageHeader:
    """The page header at ``position``: read a window at a time, a larger one while it does not fit."""
    size = _WINDOW
    while True:
        stream.seek(position)
        data = stream.read(min(size, end - position))
        try:
            reader = _Compact(data)
            fields = reader.struct(0)
            break
        except IndexError:  # the header goes on past the bytes read
            if len(data) < size or size >= MAX_HEADER_BYTES:
                raise PageHeaderError(f"the page header at byte {position:,} is cut off or longer than "
                                      f"{MAX_HEADER_BYTES:,} bytes") from None  # fmt: skip
            size *= 4
    kind, uncompressed, compressed = (_integer(fields, field, f"the page header at byte {position:,}") for field in (1, 2, 3))
    values = None
    if kind == DICTIONARY_PAGE:
        dictionary = fields.get(7)
        values = _integer(dictionary if isinstance(dictionary, dict) else {}, 1, f"the dictionary page at byte {position:,}")
    return PageHeader(kind, uncompressed, compressed, values, reader.position)


def _integer(fields: dict[int, Any], field: int, where: str) -> int:
    value = fields.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PageHeaderError(f"{where} lacks its field {field} (its type, sizes or number of values)")
    return value


def _element(kind: int) -> int:
    """A container's element type as read: a boolean in a list, set or map takes a byte of its own."""
    return _BYTE if kind in (_TRUE, _FALSE) else kind


class _Compact:
    """A Thrift compact-protocol reader over ``data`` that keeps a struct's integer fields and nested
    structs by field id and skips everything else (IndexError: the data ends first)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def byte(self) -> int:
        value = self.data[self.position]
        self.position += 1
        return value

    def varint(self) -> int:
        value = shift = 0
        for _ in range(10):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise PageHeaderError("a page header holds a number longer than 10 bytes")

    def integer(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)  # zigzag

    def struct(self, depth: int) -> dict[int, Any]:
        if depth > MAX_DEPTH:
            raise PageHeaderError(f"a page header nests structures more than {MAX_DEPTH} deep")
        fields: dict[int, Any] = {}
        field = 0
        while (head := self.byte()) != 0:
            delta, kind = head >> 4, head & 0x0F
            field = field + delta if delta else self.integer()
            fields[field] = self.value(kind, depth)
        return fields

    def value(self, kind: int, depth: int) -> Any:
        if depth > MAX_DEPTH:  # lists, sets and maps nest without a struct between them
            raise PageHeaderError(f"a page header nests structures more than {MAX_DEPTH} deep")
        if kind in (_TRUE, _FALSE):
            return kind == _TRUE
        if kind in (_I16, _I32, _I64):
            return self.integer()
        if kind == _STRUCT:
            return self.struct(depth + 1)
        skips = {_BYTE: 1, _DOUBLE: 8}
        if kind in skips:
            self.skip(skips[kind])
        elif kind == _BINARY:
            self.skip(self.varint())
        elif kind in (_LIST, _SET):
            head = self.byte()
            count = head >> 4 if head >> 4 != 15 else self.varint()
            for _ in range(count):
                self.value(_element(head & 0x0F), depth + 1)
        elif kind == _MAP:
            count = self.varint()
            types = self.byte() if count else 0
            for _ in range(count):
                self.value(_element(types >> 4), depth + 1)
                self.value(_element(types & 0x0F), depth + 1)
        else:
            raise PageHeaderError(f"a page header holds a field of unknown type {kind}")
        return None

    def skip(self, count: int) -> None:
        if self.position + count > len(self.data):
            raise IndexError("the data ends first")
        self.position += count
