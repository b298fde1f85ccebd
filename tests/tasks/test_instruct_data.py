"""Instruct datasets: the spec, rendering, loading with named errors, the split and prepare()."""

from __future__ import annotations

import csv
import json

import pytest

from trainarena.settings import DataRules, Settings
from trainarena.tasks import DatasetError, TaskDefinition, get_task_type
from trainarena.tasks.instruct import InstructDatasetSpec, render_example, tokenize_example
from trainarena.tasks.instruct.data import group_key, validate_rows
from trainarena.tasks.split import normalise, split_rows
from trainarena.tasks.text.rows import load_rows


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
    # A text key given a number or null was taken and read as text downstream (QA 16).
    for key, value, words in (("system_prompt", 5, "a string, got 5"), ("system_prompt", None, "a string, got None"),
                              ("field_input", 3, "a string or null, got 3")):  # fmt: skip
        with pytest.raises(DatasetError, match=f"'{key}' must be {words}$"):
            InstructDatasetSpec.from_dict({"source": "s", "field_instruction": "q", "field_output": "a", key: value})
    assert InstructDatasetSpec.from_dict({"source": "s", "field_instruction": "q", "field_output": "a", "field_input": None}).field_input is None


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
    loaded = validate_rows(spec_for(path), load_rows(spec_for(path), DataRules()), DataRules())
    assert loaded == [{"q": r["q"], "i": r["i"], "a": r["a"]} for r in rows]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: [{k: v for k, v in r.items() if k != "a"} for r in rows], "missing column 'a' \\(field_output\\)"),
        (lambda rows: rows[:5] + [{**rows[5], "a": "  "}] + rows[6:], "row 6, column 'a' is empty"),
        (lambda rows: rows[:2] + [{**rows[2], "q": [42]}] + rows[3:], "row 3, column 'q' is a list"),  # a number reads as its text
        (lambda rows: rows[:3] + [{"i": "", "a": "1", "q": None}] + rows[4:], "row 4, column 'q' is null"),
        (lambda rows: rows[:3] + [{"i": "", "a": "1"}] + rows[4:], "row 4, column 'q' is missing"),
        (lambda rows: rows[:7] + [{**rows[7], "i": None}] + rows[8:], None),  # an optional column may be null
        (lambda rows: rows[:10], "10 rows, fewer than the minimum of 20"),
        (lambda rows: rows[:1], ": 1 row, fewer than the minimum of 20"),
    ],
)
def test_invalid_rows_are_named(tmp_path, mutate, message):
    path = write_jsonl(tmp_path / "d.jsonl", mutate(rows_of(30)))
    if message is None:
        assert validate_rows(spec_for(path), load_rows(spec_for(path), DataRules()), DataRules())[7]["i"] == ""
        return
    with pytest.raises(DatasetError, match=message):
        validate_rows(spec_for(path), load_rows(spec_for(path), DataRules()), DataRules())


def test_a_number_reads_as_its_text_as_in_a_csv_and_a_boolean_is_refused(tmp_path):
    """docs/contract.md said a required value that is not text is refused; a number is taken, deliberately:
    a CSV has no types, so a JSONL or Parquet file of the same rows reads the same."""
    rows = rows_of(30)
    rows[4]["a"], rows[5]["q"] = 42, 2.5
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    loaded = validate_rows(spec_for(path), load_rows(spec_for(path), DataRules()), DataRules())
    assert (loaded[4]["a"], loaded[5]["q"]) == ("42", "2.5")
    rows[6]["a"] = True
    write_jsonl(path, rows)
    with pytest.raises(DatasetError, match=r"row 7, column 'a' is a bool \(True\), not text"):
        validate_rows(spec_for(path), load_rows(spec_for(path), DataRules()), DataRules())


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "x"}\n{not json\n')
    with pytest.raises(DatasetError, match="line 2 is not valid JSON"):
        load_rows(spec_for(bad), DataRules())
    with pytest.raises(DatasetError, match="cannot read the file"):
        load_rows(spec_for(tmp_path / "absent.csv"), DataRules())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # An extra field: DictReader filed it under a column named None and the row trained.
        ('q,i,a\nx,,1\n"two\nlines",,2\ny,,3,extra\nz,,4\n', "line 5 has 4 fields, the header has 3"),
        # A missing field: it read as a null the file does not have.
        ("q,i,a\nx,,1\n\ny,2\n", "line 4 has 2 fields, the header has 3"),
        ("q,i,a\nx,,1\ny\n", "line 3 has 1 field, the header has 3"),
        # A column named twice: the later one replaced the earlier without a word (QA 8).
        ("q,q,a\nx0,y0,0\n", "line 1 names column 'q' twice; give each column its own name"),
        ("a,q,q,q\n1,x,y,z\n", "line 1 names column 'q' 3 times; give each column its own name"),
        # Past the csv module's own limit: "cannot read the file (Error: field larger than field limit
        # (131072))", naming no line and a limit that is not the platform's.
        ("q,i,a\nx,,1\n" + "y" * 200_000 + ",,2\n", r"line 3 has a field longer than 131,072 characters, over the "
                                                    r"limit per field \(data.max_field_bytes\); shorten it or leave the row out"),
    ],
)
def test_a_csv_row_that_does_not_match_the_header_is_named_by_its_line(tmp_path, content, message):
    path = tmp_path / "ragged.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=f"ragged.csv: {message}$"):
        load_rows(spec_for(path), DataRules())


def test_csv_rows_keep_quoted_newlines_and_skip_blank_lines(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('q,i,a\n"two\nlines",,1\n\nb,,2\n')
    assert load_rows(spec_for(path), DataRules()) == [{"q": "two\nlines", "i": "", "a": "1"}, {"q": "b", "i": "", "a": "2"}]


@pytest.mark.parametrize(
    ("suffix", "lines"),
    [
        (".jsonl", ['{"q": "a", "i": "", "a": "1"}', '{"q": "b", "i": "", "a": "2"}', '{"q": "caf\xe9", "i": "", "a": "3"}']),
        (".csv", ["q,i,a", "a,,1", "caf\xe9,,3"]),
        (".json", ['[{"q": "a", "i": "", "a": "1"},', '{"q": "caf\xe9", "i": "", "a": "3"}]']),
    ],
)
def test_a_utf8_error_names_its_line(tmp_path, suffix, lines):
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(DatasetError, match=rf"latin1\{suffix}: line {len(lines)} is not valid UTF-8 \(byte offset \d+"):
        load_rows(spec_for(path), DataRules())


@pytest.mark.parametrize(("suffix", "content"), [(".jsonl", ""), (".jsonl", "\n  \n"), (".json", "[]"), (".csv", "q,i,a\n")])
def test_an_empty_file_says_it_is_empty(tmp_path, suffix, content):
    path = tmp_path / f"empty{suffix}"
    path.write_text(content)
    with pytest.raises(DatasetError, match=r"the file is empty \(no rows\)"):
        load_rows(spec_for(path), DataRules())


def test_a_field_over_the_size_limit_names_row_and_column(tmp_path):
    rows = rows_of(30)
    rows[11]["a"] = "9" * 70_000  # over the 64 KiB default
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DatasetError, match=r"row 12, column 'a' is 70,000 bytes, over the limit of 65,536 bytes per field"):
        load_rows(spec_for(path), DataRules())
    assert len(load_rows(spec_for(path), DataRules(max_field_bytes=100_000))) == 30


def test_a_five_megabyte_row_is_refused_even_in_a_column_nobody_reads(tmp_path):
    rows = rows_of(30)
    rows[4]["extra"] = ["x" * 1000] * 5000  # ~5 MB, and no single text field over the field limit
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DatasetError, match=r"row 5 is 5,0\d\d,\d\d\d bytes, over the limit of 262,144 bytes per row"):
        load_rows(spec_for(path), DataRules())


def test_group_key_is_the_normalised_instruction_and_input_without_the_system():
    spec = spec_for("x", field_system="sys")
    assert group_key(spec, {"q": "Add 2  and 3", "i": "", "sys": "A"}) == group_key(spec, {"q": "add 2 and 3 ", "i": None, "sys": "B"})
    assert group_key(spec, {"q": "reverse", "i": "abc"}) != group_key(spec, {"q": "reverse", "i": "abd"})
    assert group_key(spec, {"q": "a b", "i": ""}) != group_key(spec, {"q": "a", "i": "b"})


def test_split_is_seeded_disjoint_complete_and_capped():
    rows = [{"q": str(i), "a": "x"} for i in range(1000)]

    def key(row):
        return normalise(row["q"])

    train, hidden = split_rows(rows, DataRules(), key)
    assert (len(train), len(hidden)) == (900, 100)
    assert sorted(r["q"] for r in train + hidden) == sorted(r["q"] for r in rows)
    assert split_rows(rows, DataRules(), key) == (train, hidden)
    assert split_rows(rows, DataRules(split_seed=1), key)[1] != hidden
    assert len(split_rows(rows * 10, DataRules(), key)[1]) == 400  # test_max_rows


def test_prepare_keeps_one_instruction_on_one_side(tmp_path):
    """The same instruction with other outputs never straddles the split."""
    rows = [{"q": f"add {i % 40} and 1", "i": "", "a": str(i), "extra": "x"} for i in range(200)]
    dataset = {"source": str(write_jsonl(tmp_path / "d.jsonl", rows)), "field_instruction": "q", "field_output": "a", "field_input": "i"}
    prepared = get_task_type("instruct").prepare(TaskDefinition("t", "instruct", "m", dataset, 10), tmp_path / "train", tmp_path / "hidden", Settings())
    train, hidden = ({json.loads(line)["q"] for line in f.read_text().splitlines()} for f in (prepared.train_file, prepared.hidden_file))
    assert hidden and train and not train & hidden and prepared.hidden_rows == 20
    train_keys, hidden_keys = get_task_type("instruct").group_keys(prepared)
    assert len(train_keys) == prepared.train_rows and not set(train_keys) & set(hidden_keys)


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


@pytest.mark.parametrize("prompt_field", ["field_instruction", "field_input", "field_system"])
def test_the_answer_column_cannot_be_a_prompt_column(prompt_field):
    """The hidden answer printed in its own prompt: a model would score by copying it."""
    columns = {"field_instruction": "q", "field_input": "i", "field_system": "s", prompt_field: "a"}
    with pytest.raises(DatasetError, match=f"'field_output' and '{prompt_field}' both name the column 'a'"):
        InstructDatasetSpec(source="s", field_output="a", **columns)
