"""Checking an uploaded zip of captioned images, or parquet file, before anything unpacks it.

What it protects against: zip bombs (a small upload that unpacks to gigabytes: the sum of the
members' declared sizes, the bytes actually inflated, and each member's compression ratio are
bounded by ``ApiRules``), path traversal (a member named ``../x``, ``/etc/x`` or ``C:\\x``), symbolic
links stored as members, too many members, and a file that only claims to be a zip. Every refusal
names the member and the limit.

What it does not protect against: an image that is a decompression bomb of its own (the image loader
refuses one of more than ``DataRules.max_image_pixels`` from its header, before decoding it), or
captions that are wrong.
Nothing is extracted to disk: the dataset loader reads members from the archive in memory, which
this check bounds first.

A parquet file stores a repeated value once (a dictionary, run lengths), so kilobytes can name one
value in millions of rows, each its own object once the loader reads them: :func:`check_parquet`
bounds the rows' decoded size by ``api.upload_max_bytes`` (what a JSON Lines upload may hold): first
by what its page headers declare, each header read and checked before the reader sees it
(``jobs.parquet_pages``: the reader allocates what a header declares, so a lying header is refused
there, not found out after a 2 GiB allocation), then counted a batch at a time as the rows decode,
without expanding a repeated value.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from trainarena.jobs.parquet_pages import PageHeaderError, declared_uncompressed_bytes
from trainarena.settings import ApiRules
from trainarena.tasks.base import DatasetError

_CHUNK = 1 << 16
_PARQUET_BATCH_ROWS = 4096


def check_zip(path: Path, shown_name: str, rules: ApiRules) -> int:
    """The number of files in the zip at ``path`` after every check passed; DatasetError naming
    ``shown_name`` (the uploaded file's name) and the member otherwise."""
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{shown_name}: not a zip archive (an image dataset is a .zip of images and captions.jsonl)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_listing(shown_name, members, rules)
            _check_inflated(shown_name, archive, members, rules)
    except zipfile.BadZipFile as error:
        raise DatasetError(f"{shown_name}: a damaged zip archive ({error})") from None
    return sum(1 for member in members if not member.is_dir())


def _check_listing(shown_name: str, members: list[zipfile.ZipInfo], rules: ApiRules) -> None:
    """Names, kinds, count and declared sizes: refused before a byte is inflated."""
    if len(members) > rules.upload_max_zip_members:
        raise DatasetError(f"{shown_name}: {len(members):,} members, more than the {rules.upload_max_zip_members:,} allowed "
                           "(api.upload_max_zip_members)")  # fmt: skip
    declared = 0
    for member in members:
        _check_name(shown_name, member.filename)
        if stat.S_ISLNK(member.external_attr >> 16):
            raise DatasetError(f"{shown_name}: member {member.filename!r} is a symbolic link; store the file itself")
        if member.flag_bits & 0x1:
            raise DatasetError(f"{shown_name}: member {member.filename!r} is encrypted; upload a zip without a password")
        declared += member.file_size
        if declared > rules.upload_max_unpacked_bytes:
            raise DatasetError(f"{shown_name}: unpacks to more than {rules.upload_max_unpacked_bytes:,} bytes "
                               "(api.upload_max_unpacked_bytes): refused as a zip bomb")  # fmt: skip
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio > rules.upload_max_compression_ratio:
            raise DatasetError(f"{shown_name}: member {member.filename!r} is compressed {ratio:,.0f} to 1, more than "
                               f"{rules.upload_max_compression_ratio:g} to 1 (api.upload_max_compression_ratio): "
                               "refused as a zip bomb")  # fmt: skip


def _check_name(shown_name: str, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DatasetError(f"{shown_name}: member {name!r} points outside the archive (an absolute path or '..'); "
                           "use paths relative to the zip's root")  # fmt: skip


def _check_inflated(shown_name: str, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], rules: ApiRules) -> None:
    """The bytes each member really inflates to, counted as they come: declared sizes can lie."""
    inflated = 0
    for member in members:
        if member.is_dir():
            continue
        member_bytes = 0
        try:
            with archive.open(member) as stream:
                while chunk := stream.read(_CHUNK):
                    member_bytes += len(chunk)
                    inflated += len(chunk)
                    if inflated > rules.upload_max_unpacked_bytes or member_bytes > member.file_size:
                        raise DatasetError(f"{shown_name}: member {member.filename!r} inflates past its declared size "
                                           "or the unpacked limit (api.upload_max_unpacked_bytes): refused as a zip bomb")  # fmt: skip
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as error:
            raise DatasetError(f"{shown_name}: member {member.filename!r} cannot be read ({error})") from None


def check_parquet(path: Path, shown_name: str, rules: ApiRules) -> None:
    """DatasetError naming ``shown_name`` when the parquet file's rows, decoded, take more than
    ``rules.upload_max_bytes`` (module docstring)."""
    try:
        too_large = _decodes_past(path, rules.upload_max_bytes)
    except PageHeaderError as error:
        raise DatasetError(f"{shown_name}: refused before it is decoded: {error}") from None
    except (OSError, ValueError, NotImplementedError) as error:  # pyarrow's errors derive from these
        raise DatasetError(f"{shown_name}: cannot read the file ({type(error).__name__}: {error})") from None
    if too_large:
        raise DatasetError(f"{shown_name}: decodes to more than {rules.upload_max_bytes:,} bytes (api.upload_max_bytes), the "
                           "most a text upload may hold: refused as a decompression bomb")  # fmt: skip


def _decodes_past(path: Path, limit: int) -> bool:
    """Whether the file's pages (as their headers declare them), or its rows read a batch at a time, take
    more than ``limit`` bytes: every text column is read as a dictionary, so that a repeated value is
    counted once per row, never expanded."""
    import pyarrow.parquet as parquet  # here: only a parquet upload pays for its import

    metadata = parquet.read_metadata(path)
    if declared_uncompressed_bytes(path, metadata, limit) > limit:
        return True
    columns = [metadata.schema.column(index) for index in range(len(metadata.schema))]
    texts = [column.path for column in columns if column.physical_type == "BYTE_ARRAY"]
    decoded = 0
    for batch in parquet.ParquetFile(path, read_dictionary=texts).iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        decoded += sum(_decoded_bytes(column) for column in batch.columns)
        if decoded > limit:
            return True
    return False


def _decoded_bytes(array: Any) -> int:
    """The bytes the pyarrow ``array`` takes with every value its own: a dictionary's value once per row naming it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind):
        texts = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
        if not any(is_text(array.dictionary.type) for is_text in texts):
            return array.dictionary.take(array.indices).nbytes
        lengths = pc.binary_length(array.dictionary).take(array.indices)  # text: the values are never expanded
        return array.indices.nbytes + (pc.sum(lengths).as_py() or 0)
    if pa.types.is_struct(kind):
        return sum(_decoded_bytes(child) for child in array.flatten())
    if pa.types.is_map(kind):  # its rows' keys and items (list_flatten takes no map of dictionaries; keys are not sliced)
        start, end = array.offsets[0].as_py(), array.offsets[-1].as_py()
        return 4 * len(array) + sum(_decoded_bytes(part.slice(start, end - start)) for part in (array.keys, array.items))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return 4 * len(array) + _decoded_bytes(array.flatten())  # an offset a row, and the values its rows hold
    return array.nbytes
