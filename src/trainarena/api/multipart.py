"""Reading a ``multipart/form-data`` upload as it arrives: the file part is handed to a sink chunk by
chunk (never held in memory or spooled whole, so a size limit stops the read as soon as it is
passed), the small text fields are kept (each within ``FIELD_MAX_BYTES``, all the fields and part
headers together within ``FORM_MAX_BYTES``, so a body of endless small parts cannot fill memory). A
body that does not parse is a 400; one cut off before its closing boundary a 422, never a stored file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from trainarena.api.errors import ApiError

FIELD_MAX_BYTES = 65536  # a text field (kind, task_type, field_mapping) is small
FORM_MAX_BYTES = 1 << 20  # everything but the file: part headers and text fields together


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


@dataclass
class Form:
    """The text fields of the form, and the file part's name (None when the form had no file)."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None


async def read_form(content_type: str, chunks: AsyncIterator[bytes], file_field: str,
                    open_file: Callable[[str, int | None], Callable[[bytes], None]]) -> Form:  # fmt: skip
    """Parse the body; the part named ``file_field`` goes to the writer ``open_file(filename, size)``
    returns (``size``: the part's own Content-Length, when it declares one, else None). Errors of
    ``open_file`` and the sink propagate and end the read."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(415, "unsupported_media_type", "send the file as multipart/form-data (a `file` part, "
                       "e.g. `curl -F file=@data.jsonl`)")  # fmt: skip
    form = Form()
    part = _Part()
    header_name = bytearray()
    header_value = bytearray()
    writer: list[Callable[[bytes], None] | None] = [None]
    held = [0]  # bytes of headers and fields kept so far
    file_complete = [False]

    def hold(count: int) -> None:
        held[0] += count
        if held[0] > FORM_MAX_BYTES:
            raise ApiError(413, "too_large", f"the form's fields and part headers are over {FORM_MAX_BYTES} bytes; "
                           "send the file and a few small fields")  # fmt: skip

    def on_part_begin() -> None:
        nonlocal part
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        hold(end - start)
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        hold(end - start)
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part.headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _disposition, params = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = params.get(b"name", b"").decode("utf-8", errors="replace")
        filename = params.get(b"filename")
        part.filename = None if filename is None else filename.decode("utf-8", errors="replace")
        if part.name == file_field and part.filename is not None:
            if form.filename is not None:
                raise ApiError(422, "invalid_request", "send one file per upload", field=file_field)
            form.filename = part.filename
            declared = part.headers.get(b"content-length", b"").strip()
            writer[0] = open_file(part.filename, int(declared) if declared.isdigit() else None)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.name == file_field and part.filename is not None:
            assert writer[0] is not None
            writer[0](data[start:end])
            return
        hold(end - start)
        part.value.extend(data[start:end])
        if len(part.value) > FIELD_MAX_BYTES:
            raise ApiError(413, "too_large", f"form field {part.name!r} is over {FIELD_MAX_BYTES} bytes", field=part.name)

    def on_part_end() -> None:
        if part.filename is None:
            form.fields[part.name] = part.value.decode("utf-8", errors="replace")
        elif part.name == file_field:
            file_complete[0] = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    })  # fmt: skip
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        raise ApiError(400, "bad_request", f"the multipart body does not parse: {error}") from None
    if form.filename is not None and not file_complete[0]:
        raise ApiError(422, "invalid_request", "the upload ended before the file part did (the body was cut off); "
                       "send it again", field=file_field)  # fmt: skip
    return form
