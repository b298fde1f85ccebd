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
from trainarena.settings import DataRules, ImageRules, RegistrationRules, ResourceRules, SandboxRules, TournamentRules
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


def test_the_outcome_file_has_its_heading_and_limits(doc: str, headings: set[str]) -> None:
    name = f"{contract.SANDBOX_OUTPUT}/{contract.OUTCOME_FILE}"
    assert name in headings
    section = _section(doc, name)
    assert f"at most {contract.OUTCOME_WHY_MAX} characters" in section and f"over {contract.OUTCOME_MAX_BYTES} bytes" in section
    for part in ("**Purpose.**", "**Allowed.**", "**Disallowed.**"):
        assert part in section, f"{name}: missing {part}"


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


# --- Tasks: task files, built-in assets, each type's [dataset] table, typical settings -----------------

EXAMPLE_TASKS = Path(__file__).resolve().parents[2] / "examples" / "tasks"


def _tables(doc: str, heading: str) -> dict[str, list[str]]:
    """The key table of the section under ``heading``: each row's key -> its other cells."""
    start = doc.index(heading)
    section = doc[start : doc.index("\n### ", start + 1)]
    rows = re.findall(r"^\| `([^`]+)` \|(.*)\|\s*$", section, flags=re.MULTILINE)
    return {key: [cell.strip() for cell in cells.split("|")] for key, cells in rows}


def _spec_classes() -> dict[TaskType, type]:
    from trainarena.tasks.chat.spec import ChatDatasetSpec
    from trainarena.tasks.dpo.spec import DpoDatasetSpec
    from trainarena.tasks.grpo.spec import GrpoDatasetSpec
    from trainarena.tasks.image.spec import ImageDatasetSpec
    from trainarena.tasks.instruct.spec import InstructDatasetSpec

    return {TaskType.INSTRUCT: InstructDatasetSpec, TaskType.CHAT: ChatDatasetSpec, TaskType.DPO: DpoDatasetSpec,
            TaskType.GRPO: GrpoDatasetSpec, TaskType.IMAGE: ImageDatasetSpec}


def _spec_fields(task_type: TaskType) -> dict[str, object]:
    """A type's [dataset] keys -> default (``dataclasses.MISSING`` when required)."""
    from dataclasses import MISSING, fields

    return {
        f.name: (f.default_factory() if f.default_factory is not MISSING else f.default)  # type: ignore[misc]
        for f in fields(_spec_classes()[task_type])
    }


@pytest.mark.parametrize("task_type", list(TaskType))
def test_each_type_dataset_table_lists_every_key_with_its_default(doc: str, task_type: TaskType) -> None:
    from dataclasses import MISSING

    table = _tables(doc, f"### `[dataset]` of `{task_type.value}` tasks")
    spec = _spec_fields(task_type)
    assert set(table) == set(spec), f"{task_type.value}: the doc lists {sorted(table)}, the spec has {sorted(spec)}"
    for key, default in spec.items():
        required, documented = table[key][0], table[key][1]
        if default is MISSING:
            assert (required, documented) == ("yes", ""), f"{task_type.value}.{key} is required"
        else:
            expected = "none" if default is None else f"`{json.dumps(default)}`"
            assert (required, documented) == ("no", expected), f"{task_type.value}.{key}: default {default!r}"


def test_task_file_keys_table_matches_the_loader(doc: str) -> None:
    from trainarena.tasks import DEFAULT_SEED, OPTIONAL_KEYS, REQUIRED_KEYS

    table = _tables(doc, "### Task files")
    assert set(table) == set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
    assert all(table[key][0] == "yes" for key in REQUIRED_KEYS)
    assert table["seed"][:2] == ["no", f"`{DEFAULT_SEED}`"]


@pytest.mark.parametrize("task_type", list(TaskType))
def test_each_type_task_file_example_is_the_example_file_and_parses(doc: str, task_type: TaskType, tmp_path: Path) -> None:
    """The doc shows a file of examples/tasks as it is (comments aside), and its [dataset] table is a valid
    spec of its type whose built-in names exist (the examples themselves pass `task check` in
    tests/examples/test_example_tasks.py)."""
    import tomllib

    from trainarena.tasks import read_task_file
    from trainarena.tasks.builtin_assets import DATASET, IMAGE, MODEL, TEXT, find_builtin

    (example,) = _blocks(doc, f"task-file-{task_type.value}")
    (tmp_path / "example.toml").write_text(example)
    task = read_task_file(tmp_path / "example.toml")
    assert task.task_type is task_type
    shipped = EXAMPLE_TASKS / f"{task.name}.toml"
    assert tomllib.loads(example) == tomllib.loads(shipped.read_text(encoding="utf-8")), f"differs from {shipped}"
    kind = IMAGE if task_type is TaskType.IMAGE else TEXT
    find_builtin(task.base_model, role=MODEL, kind=kind)
    find_builtin(task.dataset["source"], role=DATASET, kind=kind)
    spec_class = _spec_classes()[task_type]
    if task_type is TaskType.IMAGE:
        spec_class.from_dict(task.dataset, ImageRules().model_types)
    else:
        spec_class.from_dict(task.dataset)  # a DatasetError names what is wrong


def test_every_builtin_asset_is_documented_and_no_other(doc: str) -> None:
    from trainarena.tasks.builtin_assets import ASSET_PREFIX, builtin_assets

    table = _tables(doc, "### Built-in assets: `trainarena:NAME`")
    assert set(table) == {ASSET_PREFIX + asset.name for asset in builtin_assets()}
    for asset in builtin_assets():
        assert table[ASSET_PREFIX + asset.name][0].startswith(asset.role if asset.role == "model" else asset.task_type)
    named = set(re.findall(r"trainarena:([a-z_0-9]+)", doc))
    assert named <= {asset.name for asset in builtin_assets()}, f"unknown names in the doc: {named}"


def test_typical_settings_state_the_platform_defaults(doc: str) -> None:
    data, resources, rules = DataRules(), ResourceRules(), TournamentRules()
    start = doc.index("### Typical tournament settings")
    section = " ".join(doc[start : doc.index("\n## ", start)].split())
    assert f"`test_fraction` ({data.test_fraction:.0%})" in section
    assert f"`test_max_rows` ({data.test_max_rows})" in section and f"`min_rows` ({data.min_rows})" in section
    assert f"`eval_max_length` ({data.eval_max_length}) tokens" in section
    assert f"DPO x{resources.memory_factor_dpo:g}, GRPO x{resources.memory_factor_grpo:g}" in section
    for limit, gpus in resources.gpu_brackets:
        assert f"| up to {limit:g}B | {gpus} |" in section
    assert f"| more | {resources.gpu_max} |" in section
    assert rules.boss_rule == "paired"
    assert (f"a paired test over {rules.boss_tasks_text} to {rules.boss_tasks_text * rules.boss_rounds_max} boss tasks"
            in section and f"at {rules.boss_confidence:.1%} per look" in section)
    assert "[docs/rules.md](rules.md)" in section
