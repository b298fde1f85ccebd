"""POST/GET/DELETE /v1/files: uploads streamed under the size limit, checked as `task check` does
(errors naming the row and the column), zips checked against bombs and traversal, wrong types named,
nothing left on disk after a refusal, and one customer never seeing another's files."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from trainarena.api import create_app
from trainarena.settings import ApiRules, Settings
from trainarena.store import Store


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def qa_rows(n: int = 30) -> list[dict]:
    return [{"q": f"What is {i} plus {i}?", "a": str(2 * i)} for i in range(n)]


def png(seed: int, size: int = 8) -> bytes:
    image = Image.new("RGB", (size, size), (seed * 40 % 256, seed * 90 % 256, seed * 15 % 256))
    image.putpixel((seed % size, 0), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_zip(count: int = 6, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        lines = []
        for i in range(count):
            archive.writestr(f"images/{i:04d}.png", png(i))
            lines.append(json.dumps({"file": f"images/{i:04d}.png", "caption": f"a square number {i}"}) + "\n")
        archive.writestr("captions.jsonl", "".join(lines))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def upload(jobs_client: TestClient, headers: dict[str, str], name: str, data: bytes, **fields: str):  # noqa: ANN201
    return jobs_client.post("/v1/files", headers=headers, files={"file": (name, data, "application/octet-stream")}, data=fields)


def leftovers(settings: Settings) -> list[str]:
    folder = settings.uploads_dir
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def refused(response, status: int, *words: str) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    error = response.json()["error"]
    for word in words:
        assert word in error["message"], error
    return error


def test_upload_list_show_and_delete(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    created = upload(jobs_client, auth["customer"], "qa.jsonl", jsonl(qa_rows()))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("file-") and body["object"] == "file"
    assert (body["kind"], body["format"], body["rows"], body["columns"]) == ("text", "jsonl", 30, ["q", "a"])
    listed = jobs_client.get("/v1/files", headers=auth["customer"]).json()
    assert [f["id"] for f in listed["data"]] == [body["id"]] and listed["has_more"] is False
    assert jobs_client.get(f"/v1/files/{body['id']}", headers=auth["customer"]).json()["sha256"] == body["sha256"]
    stored = leftovers(api_settings)
    assert stored == [f"{body['id']}.jsonl"]

    deleted = jobs_client.delete(f"/v1/files/{body['id']}", headers=auth["customer"])
    assert deleted.status_code == 200 and deleted.json()["deleted_at"] is not None
    assert leftovers(api_settings) == []  # the bytes are gone; the row stays
    assert jobs_client.get(f"/v1/files/{body['id']}", headers=auth["customer"]).json()["deleted_at"] is not None


def test_csv_and_parquet_are_text(jobs_client: TestClient, auth: dict, tmp_path: Path) -> None:
    csv_bytes = ("q,a\n" + "".join(f"what is {i},{i}\n" for i in range(25))).encode()
    assert upload(jobs_client, auth["customer"], "rows.csv", csv_bytes).json()["format"] == "csv"
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(qa_rows(25)), path)
    parquet = upload(jobs_client, auth["customer"], "rows.parquet", path.read_bytes(), kind="text").json()
    assert (parquet["format"], parquet["rows"]) == ("parquet", 25)


def test_customers_never_see_each_others_files(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    mine = upload(jobs_client, auth["customer"], "qa.jsonl", jsonl(qa_rows())).json()["id"]
    theirs = upload(jobs_client, auth["other"], "qa.jsonl", jsonl(qa_rows())).json()["id"]
    for method in ("get", "delete"):
        response = getattr(jobs_client, method)(f"/v1/files/{theirs}", headers=auth["customer"])
        refused(response, 404, theirs)
    assert [f["id"] for f in jobs_client.get("/v1/files", headers=auth["customer"]).json()["data"]] == [mine]
    assert {f["id"] for f in jobs_client.get("/v1/files", headers=auth["operator"]).json()["data"]} == {mine, theirs}
    refused(jobs_client.get("/v1/files", headers=auth["competitor"]), 403)
    assert len(leftovers(api_settings)) == 2  # the refused delete removed nothing


@pytest.fixture
def small_client(tmp_path: Path, api_store: Store) -> tuple[TestClient, Settings]:
    settings = Settings(data_dir=tmp_path / "data", api=ApiRules(upload_max_bytes=4096, upload_max_unpacked_bytes=20_000))
    with TestClient(create_app(settings, store=api_store)) as test_client:
        yield test_client, settings


def test_an_oversized_upload_is_refused_before_it_is_read(small_client, auth: dict) -> None:  # noqa: ANN001
    jobs_client, settings = small_client
    error = refused(upload(jobs_client, auth["customer"], "big.jsonl", jsonl(qa_rows(400))), 413, "4,096 bytes")
    assert error["details"]["limit_bytes"] == 4096
    assert leftovers(settings) == []


def test_an_oversized_stream_without_length_stops_at_the_limit(small_client, auth: dict) -> None:  # noqa: ANN001
    jobs_client, settings = small_client
    boundary = "xyzboundary"
    sent = []

    def body():  # noqa: ANN202 - chunks, so the request has no Content-Length
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
        for _ in range(200):
            sent.append(1)
            yield jsonl(qa_rows(10))
        yield f"\r\n--{boundary}--\r\n".encode()

    response = jobs_client.post("/v1/files", headers={**auth["customer"], "Content-Type": f"multipart/form-data; boundary={boundary}"},
                           content=body())  # fmt: skip
    refused(response, 413, "larger than 4,096 bytes (api.upload_max_bytes)")
    assert leftovers(settings) == []


def test_malformed_rows_name_the_row_and_the_column(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    rows = qa_rows()
    rows[4]["a"] = None
    mapping = json.dumps({"field_instruction": "q", "field_output": "a"})
    error = refused(upload(jobs_client, auth["customer"], "qa.jsonl", jsonl(rows), task_type="instruct", field_mapping=mapping),
                    422, "qa.jsonl", "row 5", "column 'a'")  # fmt: skip
    assert (error["details"]["row"], error["details"]["column"]) == (5, "a")
    assert str(api_settings.data_dir) not in error["message"]  # the server's paths are never shown
    missing = refused(upload(jobs_client, auth["customer"], "qa.jsonl", jsonl(qa_rows()), task_type="instruct",
                             field_mapping=json.dumps({"field_instruction": "question", "field_output": "a"})), 422, "missing column 'question'")  # fmt: skip
    assert missing["details"]["field"] == "field_mapping"
    too_few = refused(upload(jobs_client, auth["customer"], "qa.jsonl", jsonl(qa_rows(3))), 422, "3 rows, fewer than the minimum",
                      "(data.min_rows)")
    assert too_few["details"]["rows"] == 3
    assert leftovers(api_settings) == []


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("qa.jsonl", b'{"q": "a", "a": "b"}\nnot json at all\n', ("qa.jsonl", "line 2 is not valid JSON")),
        ("qa.jsonl", b"\xff\xfe\x00binary", ("not valid UTF-8",)),
        # A row longer than the header was stored with a column named "None".
        ("qa.csv", b"q,a\n" + b"".join(b"q%d,%d\n" % (i, i) for i in range(25)) + b"oops,1,2,3\n",
         ("qa.csv", "line 27 has 4 fields, the header has 2")),
        # A column named twice: the second replaced the first and the upload said two columns (QA 8).
        ("dup.csv", b"q,q,a\n" + b"".join(b"x%d,y%d,%d\n" % (i, i, i) for i in range(30)), ("dup.csv", "line 1 names column 'q' twice")),
        ("images.zip", b"PK\x03\x04 but not really a zip", ("images.zip", "not a zip archive")),
        ("qa.txt", b"hello", ("unsupported file type '.txt'",)),
        ("qa.parquet", b"PAR1 not parquet", ("qa.parquet", "cannot read the file")),
        # Arrays nested 100,000 deep: json's RecursionError escaped as a 500.
        ("deep.jsonl", b'{"q": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", ("deep.jsonl: line 1", "nested deeper than")),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, ("deep.json", "nested deeper than")),
    ],
)
def test_wrong_types_are_named(jobs_client: TestClient, auth: dict, api_settings: Settings, name: str, data: bytes, words: tuple) -> None:
    refused(upload(jobs_client, auth["customer"], name, data), 422, *words)
    assert leftovers(api_settings) == []


def test_a_field_mapping_nested_too_deeply_is_refused_in_words(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    """A mapping of 60,000 nested arrays: json's RecursionError escaped as a 500 (a JSON body says 422)."""
    sent = upload(jobs_client, auth["customer"], "qa.jsonl", jsonl(qa_rows()), task_type="instruct", field_mapping="[" * 60_000)
    error = refused(sent, 422, "field_mapping is nested too deeply")
    assert error["details"]["field"] == "field_mapping" and leftovers(api_settings) == []


def test_a_kind_that_does_not_match_the_file_is_refused(jobs_client: TestClient, auth: dict) -> None:
    error = refused(upload(jobs_client, auth["customer"], "qa.jsonl", jsonl(qa_rows()), kind="image"), 422,
                    "qa.jsonl: a .jsonl file is not an image dataset; image datasets are .zip")  # fmt: skip
    assert error["details"]["field"] == "kind"
    # A kind that is neither: it said "audio datasets are none".
    unknown = refused(upload(jobs_client, auth["customer"], "qa.jsonl", jsonl(qa_rows()), kind="audio"), 422,
                      "kind must be text or image, got 'audio'")  # fmt: skip
    assert unknown["details"] == {"field": "kind", "kind": "audio"}


def test_an_image_zip_is_checked_as_image_tasks_load_it(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    body = upload(jobs_client, auth["customer"], "faces.zip", image_zip()).json()
    assert (body["kind"], body["format"], body["rows"]) == ("image", "zip", 6)
    broken = image_zip(extra={"images/0099.png": b"not an image"})
    refused(upload(jobs_client, auth["customer"], "faces.zip", broken), 422, "images/0099.png")  # no caption names it
    lines = "".join(json.dumps({"file": f"images/{i:04d}.png", "caption": "c"}) + "\n" for i in range(5))
    undecodable = io.BytesIO()
    with zipfile.ZipFile(undecodable, "w") as archive:
        for i in range(4):
            archive.writestr(f"images/{i:04d}.png", png(i))
        archive.writestr("images/0004.png", b"\x89PNG but truncated")
        archive.writestr("captions.jsonl", lines)
    unreadable = refused(upload(jobs_client, auth["customer"], "faces.zip", undecodable.getvalue()), 422, "image images/0004.png is unreadable")
    # No field_mapping was sent: the problem is the file's (it was laid at "field_mapping").
    assert unreadable["details"]["field"] == "file"
    uncaptioned = io.BytesIO()
    with zipfile.ZipFile(uncaptioned, "w") as archive:
        archive.writestr("images/0001.png", png(1))
    no_captions = refused(upload(jobs_client, auth["customer"], "nocap.zip", uncaptioned.getvalue()), 422, "nocap.zip", "captions")
    assert no_captions["details"]["field"] == "file"
    assert leftovers(api_settings) == [f"{body['id']}.zip"]


def _zip_with(members: list[tuple[zipfile.ZipInfo | str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return out.getvalue()


def test_zip_bombs_are_refused(small_client, auth: dict) -> None:  # noqa: ANN001
    jobs_client, settings = small_client
    ratio = _zip_with([("captions.jsonl", b"{}\n"), ("images/zeros.png", bytes(19_000))])
    assert len(ratio) < 4096  # small on the wire
    refused(upload(jobs_client, auth["customer"], "bomb.zip", ratio), 422, "images/zeros.png", "zip bomb", "to 1")
    big = _zip_with([(f"images/{i}.png", os.urandom(1000)) for i in range(25)], zipfile.ZIP_STORED)
    refused(upload(jobs_client, auth["customer"], "big.zip", big), 413)  # over the upload limit itself
    many = _zip_with([(f"images/{i}.png", os.urandom(900)) for i in range(3)] + [("captions.jsonl", bytes(19_000))])
    assert len(many) < 4096
    refused(upload(jobs_client, auth["customer"], "wide.zip", many), 422, "unpacks to more than 20,000 bytes",
            "(api.upload_max_unpacked_bytes)", "zip bomb")
    assert leftovers(settings) == []


def _parquet(tmp_path: Path, column: pa.Array) -> bytes:
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"q": column, "a": pa.array(["4"] * len(column))}), path, compression="zstd")
    return path.read_bytes()


QUESTION = "what is two plus two?"
# One question repeated 50,000 times, as each kind of column holds it (a dictionary column: a pandas categorical).
REPEATED = {
    "plain": lambda n: pa.array([QUESTION] * n),
    "dictionary": lambda n: pa.array([QUESTION] * n).dictionary_encode(),
    "list": lambda n: pa.array([[QUESTION]] * n),
    "fixed_size_list": lambda n: pa.FixedSizeListArray.from_arrays(pa.array([QUESTION] * n), 1),
    "struct": lambda n: pa.array([{"text": QUESTION}] * n),
    "map": lambda n: pa.array([[("text", QUESTION)]] * n, type=pa.map_(pa.string(), pa.string())),
}


@pytest.mark.parametrize("kind", sorted(REPEATED))
def test_a_parquet_file_that_decodes_past_the_upload_limit_is_refused_before_it_is_loaded(
        small_client, auth: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:  # noqa: ANN001
    """Parquet stores repeated values once: a 28 KB file of 5 million rows took 1 GB and 2.5 s of the API
    process to load. Its rows, decoded, may be no larger than the upload limit, counted batch by batch
    (a dictionary's value once per row naming it, a nested column's values as its rows hold them)."""
    jobs_client, settings = small_client
    monkeypatch.setattr("trainarena.jobs.uploads.load_rows", lambda *_args: pytest.fail("the rows were loaded"))
    data = _parquet(tmp_path, REPEATED[kind](50_000))
    assert len(data) < 4096  # small on the wire
    refused(upload(jobs_client, auth["customer"], "bomb.parquet", data), 422, "bomb.parquet",
            "decodes to more than 4,096 bytes", "(api.upload_max_bytes)")
    assert leftovers(settings) == []


@pytest.mark.parametrize(
    ("member", "words"),
    [("../escape.png", ("'../escape.png'", "points outside")), ("/etc/passwd", ("'/etc/passwd'", "points outside")),
     ("images/../../x.png", ("points outside",))],
)
def test_path_traversal_inside_a_zip_is_refused(jobs_client: TestClient, auth: dict, api_settings: Settings, member: str, words: tuple) -> None:
    data = image_zip(extra={member: png(9)})
    refused(upload(jobs_client, auth["customer"], "faces.zip", data), 422, *words)
    assert leftovers(api_settings) == []


def test_a_symlink_inside_a_zip_is_refused(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    link = zipfile.ZipInfo("images/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = image_zip(extra={})
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr(link, "/etc/passwd")
    refused(upload(jobs_client, auth["customer"], "faces.zip", out.getvalue()), 422, "'images/link.png' is a symbolic link")
    assert leftovers(api_settings) == []


def test_an_upload_without_a_file_is_refused(jobs_client: TestClient, auth: dict) -> None:
    refused(jobs_client.post("/v1/files", headers=auth["customer"], data={"kind": "text"}, files={"other": ("x", b"1")}),
            422, "no file in the upload")  # fmt: skip
    refused(jobs_client.post("/v1/files", headers=auth["customer"], json={"file": "x"}), 415, "multipart/form-data")


def _multipart(jobs_client: TestClient, headers: dict[str, str], body, boundary: str = "xyzboundary"):  # noqa: ANN001, ANN202
    return jobs_client.post("/v1/files", headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}, content=body)


def test_a_body_that_does_not_parse_is_a_400(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    refused(_multipart(jobs_client, auth["customer"], b"garbage\r\n\r\n"), 400, "does not parse")
    assert leftovers(api_settings) == []


def test_a_body_cut_off_inside_the_file_is_not_stored(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    cut = (b'--xyzboundary\r\nContent-Disposition: form-data; name="file"; filename="rows.jsonl"\r\n\r\n' + jsonl(qa_rows()))
    refused(_multipart(jobs_client, auth["customer"], cut), 422, "cut off")
    assert leftovers(api_settings) == [] and jobs_client.get("/v1/files", headers=auth["customer"]).json()["data"] == []


def test_endless_small_fields_cannot_fill_memory(jobs_client: TestClient, auth: dict) -> None:
    def parts():  # noqa: ANN202 - streamed: no Content-Length for the early check
        for i in range(100_000):
            yield f'--xyzboundary\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n{"x" * 1000}\r\n'.encode()
        yield b"--xyzboundary--\r\n"

    refused(_multipart(jobs_client, auth["customer"], parts()), 413, "fields and part headers")


def test_an_encrypted_zip_is_refused_by_name(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    out = io.BytesIO(image_zip())
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr("images/secret.png", png(99))
        archive.getinfo("images/secret.png").flag_bits |= 0x1  # the encrypted flag, in the directory written at close
    refused(upload(jobs_client, auth["customer"], "faces.zip", out.getvalue()), 422, "'images/secret.png' is encrypted")
    assert leftovers(api_settings) == []
