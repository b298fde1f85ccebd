"""docs/api.md names every endpoint the API serves (and none it does not): the issue's "the docs list
every endpoint's purpose", kept true as routes are added."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from trainarena.api import create_app
from trainarena.api.errors import STATUS_CODES
from trainarena.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/v1/[^`?\s]*)")


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)  # parameter names differ between docs and code ({id}, {job_id})


def test_docs_list_every_endpoint() -> None:
    schema = create_app(Settings()).openapi()
    served = {(method.upper(), _shape(path)) for path, operations in schema["paths"].items() for method in operations}
    documented = {(method, _shape(path)) for method, path in ENDPOINT.findall(DOCS.read_text(encoding="utf-8"))}
    assert served - documented == set(), "document these endpoints in docs/api.md"
    assert documented - served == set(), "docs/api.md names endpoints the API does not serve"


def test_docs_list_every_kind_of_record_entry() -> None:
    """`GET /v1/records/entries?kind=` takes `weights`, which the docs' list left out (QA 17)."""
    from trainarena.records.statements import Kind

    line = next(line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("| `GET /v1/records/entries`"))
    listed = re.search(r"`kind` \(([^)]*)\)", line)
    assert listed is not None and set(re.findall(r"`(\w+)`", listed.group(1))) == {kind.value for kind in Kind}


def _codes_raised() -> set[str]:
    """The codes the API's routes give an ``ApiError``: every string in its second argument or, when that is
    a variable, in what the module assigns to it (``code = "publishing_off" if ... else "conflict"``)."""

    def strings(node: ast.AST) -> set[str]:
        return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}

    codes = set()
    for path in (DOCS.parents[1] / "src" / "trainarena" / "api").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assigned = [(node.targets[0].id, node.value) for node in ast.walk(tree)
                    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)]  # fmt: skip
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ApiError" and len(node.args) > 1:
                code = node.args[1]
                codes |= strings(code) if not isinstance(code, ast.Name) else set().union(
                    *(strings(value) for name, value in assigned if name == code.id))
    return codes


def test_docs_name_every_error_code() -> None:
    """A client switches on `code`: each one the API answers is in docs/api.md (`bad_request` and
    `internal_error` were not)."""
    raised = _codes_raised()
    assert {"bad_request", "publishing_off", "model_files_missing", "tournament_refused"} <= raised
    documented = set(re.findall(r"`([a-z_]+)`", DOCS.read_text(encoding="utf-8")))
    assert (raised | set(STATUS_CODES.values())) - documented == set()


def _route_lines() -> dict[tuple[str, str], str]:
    """Each route's line of docs/api.md (a list item or a table row), by (method, path shape)."""
    lines = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        found = re.match(r"(?:- |\| )`(GET|POST|PUT|PATCH|DELETE) (/v1/[^`?\s]*)`", line)
        if found:
            lines[(found.group(1), _shape(found.group(2)))] = line
    return lines


def test_docs_name_every_body_field_and_which_are_optional() -> None:
    """A route's line names each field its body takes; where it writes the body's shape (`{"name", "hotkey"?}`)
    the shape is the body's, `?` marking exactly the fields that may be left out. A route described "as for"
    another takes that one's fields."""
    schema = create_app(Settings()).openapi()
    lines = _route_lines()
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if not content:
                continue
            body = next(iter(content.values()))["schema"]
            body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]] if "$ref" in body else body
            fields, required = set(body["properties"]), set(body.get("required", []))
            line = lines[(method.upper(), _shape(path))]
            same_as = re.search(r"as for `(POST|PUT|PATCH) (/v1/[^`]*)`", line)
            named_in = line + (lines[(same_as.group(1), _shape(same_as.group(2)))] if same_as else "")
            assert {field for field in fields if f"`{field}`" not in named_in and f'"{field}"' not in named_in} == set(), line[:80]
            shape = re.search(r"`\{((?:\"\w+\"\??(?:, )?)+)\}`", line)
            if shape:
                written = dict(re.findall(r'"(\w+)"(\??)', shape.group(1)))
                assert (set(written), {f for f, optional in written.items() if not optional}) == (fields, required), line[:80]
            checked += 1
    assert checked >= 8


def test_docs_name_every_query_parameter_and_no_other() -> None:
    """A route's line names each query parameter it takes (paging's `limit`, `offset` and `after` are
    documented once for every list), and each `?name=` it shows is one the route takes."""
    schema = create_app(Settings()).openapi()
    lines = _route_lines()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            line = lines[(method.upper(), _shape(path))]
            taken = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            unnamed = {q for q in taken - {"limit", "offset", "after"} if f"`{q}`" not in line and f"{q}=" not in line}
            assert unnamed == set(), f"{method.upper()} {path}: its line does not name {sorted(unnamed)}"
            assert set(re.findall(r"[?&]([a-z_]+)=", line)) <= taken, f"{method.upper()} {path} takes only {sorted(taken)}"
