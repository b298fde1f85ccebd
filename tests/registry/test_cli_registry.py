"""`trainarena models list | show | export | publish` and `trainarena champions [export-code]`: text
that reads at 80 columns, JSON for scripts, and `champions` alone printing its table as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_data import MIT_TEXT, crown_alice
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A store where alice (MIT licensed) was crowned over bob, her models registered."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRAINARENA_REGISTRY__REGISTER_CHAMPIONS", "true")
    settings = Settings()
    crown_alice(settings, tmp_path, {"LICENSE": MIT_TEXT})
    return settings


def _invoke(*args: str, exit_code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == exit_code, result.output
    return result.stdout


def _fits(text: str) -> None:
    """Tables and details views keep to 80 columns (a details view's long values wrap: cli/output.py)."""
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_models_list_show_and_export(settings: Settings, tmp_path: Path) -> None:
    listed = json.loads(_invoke("models", "list", "--json"))["models"]
    assert [m["source"] for m in listed] == ["champion"] and listed[0]["license"] == "mit"
    model = listed[0]
    text = _invoke("models", "list")
    _fits(text)
    assert model["id"] in text and "champion" in text

    shown = json.loads(_invoke("models", "show", model["id"], "--json"))
    assert sorted(f["path"] for f in shown["files"]) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                                         "tokenizer.json", "tokenizer_config.json"]  # fmt: skip
    assert shown["measurement"] == {"metric": "eval_loss", "direction": "lower", "hidden_rows": 4, "validation_share": None,
                                   "base_score": None, "base_missing": None}  # a champion's model: no base model scored
    text = _invoke("models", "show", model["id"])
    _fits(text)  # long values wrap under their column: read them without the blanks
    squeezed = "".join(text.split())
    assert "eval_loss,lowerisbetter,on4hiddenrows" in squeezed and "".join(model["script"].split()) in squeezed
    assert "license     mit" in text

    written = json.loads(_invoke("models", "export", model["id"], str(tmp_path / "exported"), "--json"))
    assert written["ok"] and (tmp_path / "exported" / "README.md").read_text() == (Path(model["path"]) / "README.md").read_text()
    assert sorted(p.name for p in (tmp_path / "exported").iterdir()) == sorted(f["path"] for f in shown["files"])
    failed = json.loads(_invoke("models", "export", model["id"], str(tmp_path / "exported"), "--json", exit_code=1))
    assert "exists and is not an empty folder" in failed["error"]
    assert "no model model-nope" in json.loads(_invoke("models", "show", "model-nope", "--json", exit_code=1))["error"]


def test_models_export_refuses_a_folder_that_differs_from_its_registration(settings: Settings, tmp_path: Path) -> None:
    """As the download answers 409 model_files_missing: export copied what was left, claimed the registered
    number of files and exited 0 with no tokenizer in the copy."""
    model = json.loads(_invoke("models", "list", "--json"))["models"][0]
    folder = Path(model["path"])
    (folder / "tokenizer.json").unlink()
    (folder / "README.md").write_text("changed")
    refused = CliRunner().invoke(app, ["models", "export", model["id"], str(tmp_path / "partial")], env={"COLUMNS": "80"})
    failed = " ".join(refused.output.split())  # the one error line, folded at 80 columns
    assert refused.exit_code == 1 and "wrote" not in failed
    assert "cannot be exported" in failed and "tokenizer.json is missing" in failed and "README.md is 7 bytes" in failed
    assert not (tmp_path / "partial").exists() or not any((tmp_path / "partial").iterdir())
    as_json = json.loads(_invoke("models", "export", model["id"], str(tmp_path / "partial"), "--json", exit_code=1))
    assert "tokenizer.json is missing" in as_json["error"]


def test_models_export_refuses_a_file_changed_since_registration_at_the_same_size(settings: Settings, tmp_path: Path) -> None:
    """Sizes alone were compared: a config edited in place was exported, exit 0 (QA)."""
    model = json.loads(_invoke("models", "list", "--json"))["models"][0]
    config = Path(model["path"]) / "adapter_config.json"
    original = config.read_bytes()
    config.write_bytes(original.replace(b'"', b"'", 1))
    failed = json.loads(_invoke("models", "export", model["id"], str(tmp_path / "out"), "--json", exit_code=1))["error"]
    assert "cannot be exported: its folder differs from its registration: adapter_config.json has sha256" in failed
    assert [name for name in ("README.md", "tokenizer.json") if name in failed] == []  # the files that match are not named
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-exported is left
    config.write_bytes(original)
    assert json.loads(_invoke("models", "export", model["id"], str(tmp_path / "out"), "--json"))["ok"]


def test_models_publish_says_it_is_off(settings: Settings) -> None:
    model_id = json.loads(_invoke("models", "list", "--json"))["models"][0]["id"]
    failed = json.loads(_invoke("models", "publish", model_id, "--json", exit_code=1))
    assert "publishing to the Hugging Face Hub is off" in failed["error"]


def test_champions_alone_prints_the_table_and_the_reigning_champions_code(settings: Settings) -> None:
    text = _invoke("champions")
    _fits(text)
    assert "Champions" in text and "alice" in text
    assert "Reigning text champion alice: its code" in text and "license        mit (LICENSE)" in text
    reigns = json.loads(_invoke("champions", "--json"))
    assert [(r["kind"], r["champion"]) for r in reigns] == [("text", "alice")]
    code = reigns[0]["code"]
    assert code["license"] == "mit" and code["license_found"] and code["pinned"].endswith(code["commit"])
    assert json.loads(_invoke("champions", "--kind", "image", "--json")) == []


def test_champions_export_code_writes_and_verifies_the_tree(settings: Settings, tmp_path: Path) -> None:
    text = _invoke("champions", "export-code", "alice", str(tmp_path / "code"))
    assert "matches the registered one" in text and "DIFFERS" not in text
    assert (tmp_path / "code" / "LICENSE").read_text() == MIT_TEXT
    exported = json.loads(_invoke("champions", "export-code", "alice", str(tmp_path / "again"), "--json"))
    assert exported["ok"] and exported["verified"] and exported["license_text"] == "mit (LICENSE)"
    missing = json.loads(_invoke("champions", "export-code", "nobody", str(tmp_path / "x"), "--json", exit_code=1))
    assert "no competitor 'nobody'" in missing["error"]


def test_champions_export_code_refuses_a_competitor_never_crowned(settings: Settings, tmp_path: Path) -> None:
    """The QA exported a losing entrant's code under the heading "champion": the command that open-sources
    a champion's code names who the champions are instead."""
    refused = json.loads(_invoke("champions", "export-code", "bob", str(tmp_path / "bob"), "--json", exit_code=1))
    assert refused["error"] == ("bob has never been crowned champion; the champions are alice (text) "
                                "(`trainarena champions` lists every crowning)")
    assert not (tmp_path / "bob").exists()


def test_champions_alone_on_an_empty_store_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "empty"))
    assert _invoke("champions") == "no champion crowned yet\n"
    assert json.loads(_invoke("champions", "--json")) == []
    assert "no registered models yet" in _invoke("models", "list")


@pytest.mark.parametrize("command", [
    ["models", "export", "{model}", "{target}"],
    ["champions", "export-code", "alice", "{target}"],
    ["export", "1", "{target}"],
    ["keys", "public", "--output", "{target}/key.pem"],
    ["weights", "export", "--format", "csv", "--output", "{target}/weights.json"],
])  # fmt: skip
def test_a_destination_that_cannot_be_created_is_one_line_with_its_cause(settings: Settings, tmp_path: Path,
                                                                        command: list[str]) -> None:  # fmt: skip
    """A file on the way was a NotADirectoryError traceback, or "File exists" for `keys public` (QA)."""
    _invoke("weights", "publish")
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way\n")
    model = json.loads(_invoke("models", "list", "--json"))["models"][0]["id"]
    result = CliRunner().invoke(app, [arg.format(model=model, target=blocker / "sub") for arg in command], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and not isinstance(result.exception, OSError), result.output
    assert result.output.strip() == f"error: cannot create {blocker / 'sub'}: Not a directory ({blocker} is a file)"
