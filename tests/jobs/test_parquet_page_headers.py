"""A parquet upload whose page headers lie is refused from the headers, before pyarrow decodes a page
and allocates what they declare: a page declaring it decompresses to 2 GiB (pyarrow 26 allocated it,
then found the page decompressed to 150 kB), a dictionary page declaring 2^31 values in 400 bytes
(pyarrow allocated 16 GiB for them). Each is a DatasetError that says why, with the memory pool's
peak far below the lie; honest files pass as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainarena.jobs.archives import check_parquet
from trainarena.jobs.parquet_pages import PageHeaderError, declared_uncompressed_bytes
from trainarena.settings import ApiRules
from trainarena.tasks.base import DatasetError

LIMIT = 5_000_000
LIE = 2**31 - 1  # the most an i32 header field can declare
I32 = 0x15  # a Thrift compact field header: the next field id, type i32


def overlong_varint(value: int, length: int) -> bytes:
    """``value`` zigzag-encoded as a varint of exactly ``length`` bytes (Thrift readers take padded ones)."""
    zigzag = value << 1
    assert zigzag >> (7 * length) == 0
    return bytes(((zigzag >> (7 * i)) & 0x7F) | (0x80 if i < length - 1 else 0) for i in range(length))


def varint_end(data: bytes, position: int) -> int:
    while data[position] & 0x80:
        position += 1
    return position + 1


def lying_page(data: bytes, offset: int, lie_in: str) -> bytes:
    """``data`` with the page header at ``offset`` declaring LIE as its uncompressed size (``"size"``) or
    as the values of its dictionary (``"values"``), the header no longer: the checksum pyarrow wrote
    (``write_page_checksum``) makes room for the longer number and goes."""
    fields, position = [], offset  # type, uncompressed size, compressed size, crc: each an i32
    for _ in range(4):
        assert data[position] == I32
        end = varint_end(data, position + 1)
        fields.append(data[position + 1 : end])
        position = end
    page_type, size, compressed = fields[0], fields[1], fields[2]
    nested = bytes([data[position] + 0x10])  # the page type's struct: its field id now follows the compressed size's
    if lie_in == "size":
        head = bytes([I32]) + page_type + bytes([I32])
        tail = bytes([I32]) + compressed + nested
        rest = position + 1
    else:
        assert data[position + 1] == I32
        head = bytes([I32]) + page_type + bytes([I32]) + size + bytes([I32]) + compressed + nested + bytes([I32])
        tail = b""
        rest = varint_end(data, position + 2)
    room = rest - offset - len(head) - len(tail)
    assert room >= 5, room
    return data[:offset] + head + overlong_varint(LIE, room) + tail + data[rest:]


@pytest.fixture
def honest_files(tmp_path: Path) -> dict[str, Path]:
    rows = [f"What is {i} plus {i}? Answer in words, please." for i in range(4000)]
    text, numbers = tmp_path / "text.parquet", tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"q": rows, "a": [str(2 * i) for i in range(4000)]}), text, compression="snappy",
                   use_dictionary=False, write_page_checksum=True)  # fmt: skip
    pq.write_table(pa.table({"q": pa.array([i % 50 for i in range(4000)], pa.int64()), "a": ["4"] * 4000}), numbers,
                   compression="none", write_page_checksum=True)  # fmt: skip
    return {"size": text, "values": numbers}


def lying_file(honest: Path, lie_in: str) -> Path:
    chunk = pq.read_metadata(honest).row_group(0).column(0)
    offset = chunk.dictionary_page_offset if lie_in == "values" else chunk.data_page_offset
    lying = honest.with_name(f"lying-{lie_in}.parquet")
    lying.write_bytes(lying_page(honest.read_bytes(), offset, lie_in))
    return lying


def checked_in_a_process_of_its_own(path: Path) -> dict:
    """check_parquet's refusal and the peak of pyarrow's memory pool, from a fresh process: the pool's
    peak is the process's, and pyarrow's allocation for a lie would only show there."""
    probe = (
        "import json, sys, pyarrow\nfrom pathlib import Path\n"
        "from trainarena.jobs.archives import check_parquet\nfrom trainarena.settings import ApiRules\n"
        f"try:\n    check_parquet(Path(sys.argv[1]), 'data.parquet', ApiRules(upload_max_bytes={LIMIT}))\n    refusal = None\n"
        "except Exception as error:\n    refusal = f'{type(error).__name__}: {error}'\n"
        "print(json.dumps({'refusal': refusal, 'peak': pyarrow.default_memory_pool().max_memory()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_honest_files_pass_and_declare_what_they_decode_to(honest_files: dict[str, Path]) -> None:
    for path in honest_files.values():
        check_parquet(path, path.name, ApiRules(upload_max_bytes=LIMIT))
        metadata = pq.read_metadata(path)
        declared = sum(metadata.row_group(0).column(c).total_uncompressed_size for c in range(metadata.num_columns))
        assert 0 < declared_uncompressed_bytes(path, metadata, LIMIT) <= declared  # the footer's counts the headers too


def test_a_page_that_lies_about_its_size_is_refused_before_it_is_decoded(honest_files: dict[str, Path]) -> None:
    lying = lying_file(honest_files["size"], "size")
    assert pq.read_metadata(lying).row_group(0).column(0).total_uncompressed_size < LIMIT  # the footer does not tell
    outcome = checked_in_a_process_of_its_own(lying)
    assert outcome["refusal"] == (f"DatasetError: data.parquet: decodes to more than {LIMIT:,} bytes (api.upload_max_bytes), "
                                  "the most a text upload may hold: refused as a decompression bomb")  # fmt: skip
    assert outcome["peak"] < LIMIT


def test_a_dictionary_that_lies_about_its_values_is_refused_before_it_is_decoded(honest_files: dict[str, Path]) -> None:
    lying = lying_file(honest_files["values"], "values")
    outcome = checked_in_a_process_of_its_own(lying)
    assert outcome["refusal"].startswith("DatasetError: data.parquet: refused before it is decoded: column 'q', the page at ")
    assert f"a dictionary of {LIE:,} values declared in" in outcome["refusal"], outcome
    assert outcome["peak"] < LIMIT


def test_a_page_running_past_its_column_chunk_is_refused(honest_files: dict[str, Path], tmp_path: Path) -> None:
    honest = honest_files["size"]
    data = bytearray(honest.read_bytes())
    offset = pq.read_metadata(honest).row_group(0).column(0).data_page_offset
    compressed_at = varint_end(data, varint_end(data, offset + 1) + 1) + 1  # past the type and the uncompressed size
    end = varint_end(data, compressed_at)
    data[compressed_at:end] = b"\xfe" + b"\xff" * (end - compressed_at - 2) + b"\x7f"  # the largest size its bytes hold
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(bytes(data))
    with pytest.raises(PageHeaderError, match="runs past its column chunk"):
        declared_uncompressed_bytes(broken, pq.read_metadata(broken), LIMIT)
    with pytest.raises(DatasetError, match="refused before it is decoded"):
        check_parquet(broken, "broken.parquet", ApiRules(upload_max_bytes=LIMIT))


def test_lists_nested_past_the_depth_limit_are_refused_in_words(honest_files: dict[str, Path], tmp_path: Path) -> None:
    """A header of lists in lists (0x19: a field holding a list of one list) nests without a struct
    between, and recursed until Python's own limit: a RecursionError, which the upload turned into a 500."""
    honest = honest_files["size"]
    data = bytearray(honest.read_bytes())
    offset = pq.read_metadata(honest).row_group(0).column(0).data_page_offset
    data[offset : offset + 5000] = b"\x19" * 5000
    nested = tmp_path / "nested.parquet"
    nested.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="nests structures more than"):
        check_parquet(nested, "nested.parquet", ApiRules(upload_max_bytes=LIMIT))
