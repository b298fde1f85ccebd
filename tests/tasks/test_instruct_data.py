"""Instruct datasets: the spec, rendering, loading with named errors, the split and prepare()."""

from __future__ import annotations

import csv
import json

import pytest

from trainarena.settings import DataRules, Settings
from trainarena.tasks import DatasetError, TaskDefinition, get_task_type
from trainarena.tasks.instruct import InstructDatasetSpec, render_example, tokenize_example
from trainarena.tasks.instruct.data import validate_rows
from trainarena.tasks.text.rows import load_rows, split_rows


def rows_of(n: int) -> list[dict[str, str]]:
    return [{"q": f"add {i} and 1", "i": "", "a": str(i + 1), "extra": "x"} for i in range(n)]


def spec_for(path, **extra) -> InstructDatasetSpec:
    return InstructDatasetSpec(source=str(path), field_instruction="q", field_output="a", field_input="i", **extra)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_spec_rejects_unknown_keys_missing_keys_and_bad_placeholders():
    with pytest.raises(DatasetError, match=r"unknown key\(s\) \['colour'\]"):
        InstructDatasetSpec.from_dict({"source": "s", "field_instruction": "q", "field_output": "a", "colour": 1})
    with pytest.raises(DatasetError, match=r"missing required key\(s\) \['field_output'\]"):
        InstructDatasetSpec.from_dict({"source": "s", "field_instruction": "q"})
    with pytest.raises(DatasetError, match=r"'format' .* uses \['question'\]"):
        InstructDatasetSpec(source="s", field_instruction="q", field_output="a", format="{question}")
    with pytest.raises(DatasetError, match="'field_output' must be a non-empty string"):
        InstructDatasetSpec(source="s", field_instruction="q", field_output="")


def test_rendering_uses_the_formats_system_and_separator():
    spec = InstructDatasetSpec(
        source="s", field_instruction="q", field_output="a", field_input="i", field_system="sys",
        format="Q: {instruction} | {input}", no_input_format="Q: {instruction}", system_format="[{system}] ",
        system_prompt="Be brief.", response_separator=" => ",
    )
    assert render_example(spec, {"q": "rev", "i": "abc", "a": "cba", "sys": "S"}) == ("[S] Q: rev | abc => ", "cba")
    assert render_example(spec, {"q": "rev", "i": " ", "a": "x", "sys": ""}) == ("[Be brief.] Q: rev => ", "x")


def test_tokenize_masks_the_prompt_ends_with_eos_and_truncates_the_prompt_first(assets):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(assets.tiny_llama)
    ids, labels = tokenize_example(tokenizer, "add 12 and 7\n", "19", max_length=512)
    prompt_len = labels.count(-100)
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert labels[prompt_len:] == ids[prompt_len:] and tokenizer.decode(ids[prompt_len:-1]) == "19"
    short_ids, short_labels = tokenize_example(tokenizer, "word " * 100, "19", max_length=8)
    assert len(short_ids) == 8 and short_labels[-len(labels[prompt_len:]):] == labels[prompt_len:]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_every_file_format_loads_the_same_rows(tmp_path, suffix):
    rows, path = rows_of(25), tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, rows)
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    loaded = validate_rows(spec_for(path), load_rows(spec_for(path)), DataRules())
    assert loaded == [{"q": r["q"], "i": r["i"], "a": r["a"]} for r in rows]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: [{k: v for k, v in r.items() if k != "a"} for r in rows], "missing column 'a' \\(field_output\\)"),
        (lambda rows: rows[:5] + [{**rows[5], "a": "  "}] + rows[6:], "row 6, column 'a' is empty"),
        (lambda rows: rows[:2] + [{**rows[2], "q": 42}] + rows[3:], "row 3, column 'q' is a int"),
        (lambda rows: rows[:3] + [{"i": "", "a": "1", "q": None}] + rows[4:], "row 4, column 'q' is missing"),
        (lambda rows: rows[:10], "10 rows, fewer than the minimum of 20"),
    ],
)
def test_invalid_rows_are_named(tmp_path, mutate, message):
    path = write_jsonl(tmp_path / "d.jsonl", mutate(rows_of(30)))
    with pytest.raises(DatasetError, match=message):
        validate_rows(spec_for(path), load_rows(spec_for(path)), DataRules())


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "x"}\n{not json\n')
    with pytest.raises(DatasetError, match="line 2 is not valid JSON"):
        load_rows(spec_for(bad))
    with pytest.raises(DatasetError, match="cannot read the file"):
        load_rows(spec_for(tmp_path / "absent.csv"))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetError, match="cannot read the file"):
        load_rows(spec_for(binary))


def test_split_is_seeded_disjoint_complete_and_capped():
    rows = [{"q": str(i), "a": "x"} for i in range(1000)]
    train, hidden = split_rows(rows, DataRules())
    assert (len(train), len(hidden)) == (900, 100)
    assert sorted(r["q"] for r in train + hidden) == sorted(r["q"] for r in rows)
    assert split_rows(rows, DataRules()) == (train, hidden)
    assert split_rows(rows, DataRules(split_seed=1))[1] != hidden
    assert len(split_rows(rows * 10, DataRules())[1]) == 400  # test_max_rows


def test_prepare_writes_train_with_original_columns_and_a_spec_without_host_paths(tmp_path, assets):
    source = assets.datasets["letter_count_custom"]
    task = TaskDefinition("t", "instruct", str(assets.tiny_llama), {"source": str(source), **assets.dataset_fields["letter_count_custom"]}, 10)
    prepared = get_task_type("instruct").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())
    assert (prepared.train_rows, prepared.hidden_rows) == (540, 60)
    train = [json.loads(line) for line in prepared.train_file.read_text().splitlines()]
    assert set(train[0]) == {"sys", "question", "context", "answer"}
    written = json.loads((tmp_path / "train" / "dataset_spec.json").read_text())
    assert written == prepared.dataset_spec and written["source"] == "train.jsonl"
    assert str(tmp_path) not in json.dumps(written) and "scoring" in written
    assert prepared.hidden_file.parent == tmp_path / "hidden" and not (tmp_path / "train" / "hidden.jsonl").exists()
    hidden = set(prepared.hidden_file.read_text().splitlines())
    assert len(hidden) == 60 and not hidden & set(prepared.train_file.read_text().splitlines())
    # a script can rebuild the scored prompt from the written spec alone
    prompt, completion = render_example(InstructDatasetSpec.from_dict(written), train[0])
    assert prompt.startswith(train[0]["sys"]) and completion == train[0]["answer"]
