"""Conformance of docs/contract.md with src/trainarena/contract.py: every argument, environment
variable and sandbox path has its own heading, and the examples in the doc parse as the code says."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from trainarena import contract
from trainarena.contract import CONTRACT_VERSION, MANIFEST_NAME, RunSpec, TaskType, script_environment
from trainarena.settings import RegistrationRules, SandboxRules
from trainarena.submissions import RegistrationError, parse_manifest

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
SPEC = RunSpec(run_id="r-2f7c", task_type=TaskType.INSTRUCT, dataset_file="train.jsonl", budget_seconds=600,
               seed=7, devices=(0,), base_model_name="tiny-llama-5m")


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def headings(doc: str) -> set[str]:
    """Heading texts that are a single code span, e.g. "### `--seed`" -> "--seed"."""
    return set(re.findall(r"^#{2,4} `([^`]+)`\s*$", doc, flags=re.MULTILINE))


def _blocks(doc: str, tag: str) -> list[str]:
    return re.findall(rf"^```\w+ {re.escape(tag)}\n(.*?)^```", doc, flags=re.MULTILINE | re.DOTALL)


def _section(doc: str, heading: str) -> str:
    start = doc.index(f"### `{heading}`")
    following = doc.find("\n#", start + 1)
    return doc[start : following if following != -1 else None]


def test_every_argument_has_a_heading_with_purpose_allowed_disallowed(doc: str, headings: set[str]) -> None:
    flags = [item for item in SPEC.argv("train.py") if item.startswith("--")]
    assert len(flags) == 8
    for flag in flags:
        assert flag in headings, f"{flag} is passed by RunSpec.argv but has no heading in {DOC.name}"
        section = _section(doc, flag)
        for part in ("**Purpose.**", "**Allowed.**", "**Disallowed.**"):
            assert part in section, f"{flag}: missing {part}"


def test_every_environment_variable_has_a_heading(doc: str, headings: set[str]) -> None:
    environment = script_environment(SPEC, deadline_unix=1_764_142_351.25)
    for name in environment:
        assert name in headings, f"{name} is set by script_environment but has no heading in {DOC.name}"
        for part in ("**Purpose.**", "**Allowed.**", "**Disallowed.**"):
            assert part in _section(doc, name), f"{name}: missing {part}"


def test_constant_environment_values_are_stated(doc: str) -> None:
    varying = {"TRAINARENA_CONTRACT", "TRAINARENA_RUN_ID", "TRAINARENA_DEADLINE", "CUDA_VISIBLE_DEVICES"}
    for name, value in script_environment(SPEC, deadline_unix=0).items():
        if name not in varying:
            assert f"`{name}={value}`" in doc, f"{name}: its value {value!r} is not stated as `{name}={value}`"


def test_every_sandbox_path_has_a_heading(headings: set[str]) -> None:
    paths = {name: str(value) for name, value in vars(contract).items() if name.startswith("SANDBOX_")}
    assert {"SANDBOX_SUBMISSION", "SANDBOX_INPUTS", "SANDBOX_OUTPUT", "SANDBOX_MODEL"} <= set(paths)
    for name, path in paths.items():
        assert path in headings, f"{name} = {path} has no heading in {DOC.name}"
    assert f"/inputs/{SPEC.dataset_file}" in headings
    assert "/tmp" in headings


def test_argv_example_is_what_runspec_produces(doc: str) -> None:
    (example,) = _blocks(doc, "argv-example")
    assert example.strip() == " ".join(SPEC.argv("train.py"))


def test_task_json_example_has_exactly_the_runspec_fields(doc: str) -> None:
    (example,) = _blocks(doc, "task-json")
    assert json.loads(example) == json.loads(SPEC.to_json())
    assert set(json.loads(example)) == set(asdict(SPEC))


def test_manifest_examples_parse_as_documented(doc: str) -> None:
    allowed, disallowed = _blocks(doc, "manifest-allowed"), _blocks(doc, "manifest-disallowed")
    assert len(allowed) >= 2 and len(disallowed) >= 4
    for text in allowed:
        assert parse_manifest(text).contract == CONTRACT_VERSION
    for text in disallowed:
        with pytest.raises(RegistrationError):
            parse_manifest(text)


def test_manifest_task_types_and_version_are_documented(doc: str, headings: set[str]) -> None:
    assert MANIFEST_NAME in headings
    manifest_section = _section(doc, MANIFEST_NAME)
    for task_type in TaskType:
        assert f"`{task_type.value}`" in manifest_section
    assert f"runs versions 1 to {CONTRACT_VERSION}" in manifest_section


def test_documented_defaults_match_the_settings(doc: str) -> None:
    rules, sandbox = RegistrationRules(), SandboxRules()
    assert " ".join(rules.forbidden_suffixes) in " ".join(doc.split())
    assert f"Files over {rules.max_file_mb:g} MB; a tree over {rules.max_repo_mb:g} MB" in doc
    assert f"default {sandbox.grace_seconds:g} s" in doc
    assert f"default {sandbox.log_max_bytes:,} bytes" in doc
    assert f"default {sandbox.memory_limit_mb} MB" in doc


def _example_functions(doc: str) -> dict[str, object]:
    """The example script's functions, executed without its heavy imports (torch, transformers) so
    the check stays fast; only the standard-library imports and the definitions run."""
    (script,) = _blocks(doc, "example-script")
    tree = ast.parse(script)
    heavy = {"torch", "transformers"}
    tree.body = [
        node for node in tree.body
        if not (isinstance(node, ast.Import) and any(a.name.split(".")[0] in heavy for a in node.names))
        and not (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in heavy)
        and not isinstance(node, ast.If)  # the __main__ guard
    ]
    namespace: dict[str, object] = {"__name__": "contract_example"}
    exec(compile(tree, "contract_example.py", "exec"), namespace)
    return namespace


def test_example_script_parses_the_contract_argv(doc: str) -> None:
    parse_args = _example_functions(doc)["parse_args"]
    args = parse_args(SPEC.argv("train.py")[2:] + ["--future-option", "x"])  # type: ignore[operator]
    assert (args.task_type, args.model, args.output_dir) == ("instruct", "/inputs/model", "/output")
    assert (args.budget_seconds, args.seed, args.devices) == (600.0, 7, "0")
    no_gpu = RunSpec(run_id="r", task_type=TaskType.INSTRUCT, dataset_file="train.jsonl", budget_seconds=1, seed=0)
    assert parse_args(no_gpu.argv("train.py")[2:]).devices == ""  # type: ignore[operator]


def test_instruct_spec_example_has_the_keys_scripts_get(doc: str) -> None:
    from trainarena.tasks.instruct.spec import InstructDatasetSpec

    (example,) = _blocks(doc, "instruct-spec")
    documented = json.loads(example)
    written = InstructDatasetSpec(source="/host/data.jsonl", field_instruction="q", field_output="a").for_script("train.jsonl")
    assert set(documented) == set(written)
    assert set(documented["scoring"]) - {"..."} <= set(written["scoring"])
    spec_fields = InstructDatasetSpec(source="s", field_instruction="q", field_output="a")
    for key in ("format", "no_input_format", "system_format", "system_prompt", "response_separator"):
        assert documented[key] == getattr(spec_fields, key), f"{key}: the doc shows another default"
    instruct_section = doc[doc.index("### `instruct`") : doc.index("### `chat`")]
    for key in written:
        assert f"`{key}`" in instruct_section, f"dataset_spec.json key {key} is not explained"


ROWS = [
    {"q": "add 2 and 3", "i": "", "s": "", "a": "5"},
    {"q": "reverse", "i": "abc", "s": "You reverse strings.", "a": "cba"},
    {"q": "count", "i": "   ", "s": None, "a": "0"},
    {"q": "upper", "i": None, "a": "X"},
]


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("system_prompt", ["", "Be brief."])
def test_example_script_renders_prompts_like_the_evaluator(doc: str, row: dict, system_prompt: str) -> None:
    from trainarena.tasks.instruct.render import render_prompt
    from trainarena.tasks.instruct.spec import InstructDatasetSpec

    spec = InstructDatasetSpec(source="x", field_instruction="q", field_output="a", field_input="i",
                               field_system="s", format="<{instruction}|{input}>", system_prompt=system_prompt)
    as_script_sees_it = json.loads(json.dumps(spec.for_script("train.jsonl")))
    prompt_of = _example_functions(doc)["prompt_of"]
    assert prompt_of(row, as_script_sees_it) == render_prompt(spec, row)  # type: ignore[operator]


def test_task_file_example_loads(doc: str, tmp_path: Path) -> None:
    from trainarena.tasks import load_task_file

    (example,) = _blocks(doc, "task-file")
    task_file = tmp_path / "my-task.toml"
    task_file.write_text(example)
    (tmp_path / "models" / "tiny_llama").mkdir(parents=True)
    task = load_task_file(task_file)
    assert task.task_type is TaskType.INSTRUCT
    assert task.dataset["field_instruction"] == "instruction"
    # As the doc says: relative paths are read against the task file's folder.
    assert task.base_model == str(tmp_path.resolve() / "models" / "tiny_llama")
    assert task.dataset["source"] == str(tmp_path.resolve() / "arithmetic.jsonl")
