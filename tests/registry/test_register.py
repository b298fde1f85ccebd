"""register_model: the Hugging Face-layout folder (weights, configs, tokenizer, card), built atomically,
with its digest and its card's facts recorded."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest
from registry_data import (
    MIT_TEXT,
    register_repo,
    write_base_model,
    write_full_artifact,
    write_image_artifact,
    write_peft_artifact,
)

from trainarena.registry import ModelSource, SameAsBaseVerdict, register_model, tar_chunks
from trainarena.registry.card import parse_front_matter
from trainarena.registry.layout import PublishError
from trainarena.registry.models import base_model_folder
from trainarena.settings import Settings
from trainarena.store import get_competitor, open_store
from trainarena.tasks.digests import path_digest
from trainarena.tasks.text.scoring import ArtifactError

NO_CLAIM = SameAsBaseVerdict(None, None)  # these artifacts say nothing of the base model's weights


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return Settings()


def _register(settings: Settings, artifact: Path, **options):
    fields = dict(source=ModelSource.JOB, task_type="instruct", base_model="org/base", dataset_digest="e" * 64, score=0.5,
                  owner_key_id=None, same_as_base=NO_CLAIM) | options  # fmt: skip
    with open_store(settings) as store, store.transaction() as session:
        row = register_model(settings, session, artifact_dir=artifact, **fields)
        return row.id, Path(row.path), row.digest, row.card


def test_a_peft_adapter_gets_the_base_tokenizer_a_card_and_its_base_model_named(settings: Settings, tmp_path: Path) -> None:
    artifact = write_peft_artifact(tmp_path / "artifact")
    base = write_base_model(tmp_path / "base")
    model_id, folder, digest, card = _register(settings, artifact, base_model_dir=base)

    assert folder == settings.registry_dir / model_id and folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                                         "tokenizer.json", "tokenizer_config.json"]  # fmt: skip
    assert (folder / "tokenizer.json").read_bytes() == (base / "tokenizer.json").read_bytes()
    assert (folder / "adapter_model.safetensors").read_bytes() == (artifact / "adapter_model.safetensors").read_bytes()
    # The sandbox path the script saw is replaced by the Hub id the folder is loaded against.
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == "org/base"
    meta = parse_front_matter((folder / "README.md").read_text())
    assert meta["library_name"] == "peft" and meta["base_model"] == "org/base" and meta["license"] == "apache-2.0"
    assert "- Training script: house script" in (folder / "README.md").read_text()
    assert digest == path_digest(folder)
    assert card["library"] == "peft" and card["license_found"] is False and card["script"] is None
    assert not [p.name for p in settings.registry_dir.iterdir() if p.name.startswith(".staging")]


def test_a_full_model_gets_the_base_config_and_tokenizer_and_an_image_lora_only_its_weights(settings: Settings, tmp_path: Path) -> None:
    base = write_base_model(tmp_path / "base")
    artifact = write_full_artifact(tmp_path / "full")
    _, full, _, card = _register(settings, artifact, base_model_dir=base)
    assert sorted(p.name for p in full.iterdir()) == ["README.md", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    # The evaluator scored the weights in the base model's config, with the base model's tokenizer.
    assert (full / "config.json").read_bytes() == (base / "config.json").read_bytes()
    assert (full / "tokenizer_config.json").read_bytes() == (base / "tokenizer_config.json").read_bytes()
    assert (full / "model.safetensors").read_bytes() == (artifact / "model.safetensors").read_bytes()
    assert card["library"] == "transformers"

    _, image, _, card = _register(settings, write_image_artifact(tmp_path / "image"), task_type="image", base_model_dir=base)
    assert sorted(p.name for p in image.iterdir()) == ["README.md", "pytorch_lora_weights.safetensors"]
    assert parse_front_matter((image / "README.md").read_text())["library_name"] == "diffusers" == card["library"]


HOSTILE_EXTRAS = {
    "modeling_evil.py": "import os\nos.system('touch /tmp/pwned')\n",
    "tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}}),
    "tokenization_evil.py": "raise SystemExit\n",
    "generation_config.json": json.dumps({"suppress_tokens": [1, 2, 3]}),
    "notes/extra.txt": "anything",
    "training_args.bin": "pickle",
}


def _add_hostile_files(artifact: Path) -> None:
    for name, text in HOSTILE_EXTRAS.items():
        (artifact / name).parent.mkdir(parents=True, exist_ok=True)
        (artifact / name).write_text(text)


def test_only_what_was_scored_is_published_never_an_artifacts_code_or_its_own_configs(settings: Settings, tmp_path: Path) -> None:
    """The audit's artifact: config.json with auto_map and an unscored rms_norm_eps, modeling_evil.py, its own
    tokenizer and generation config. The folder holds the scored weights and the base model's files only."""
    base = write_base_model(tmp_path / "base")
    (base / "generation_config.json").write_text(json.dumps({"max_new_tokens": 7}))
    full = write_full_artifact(tmp_path / "full")
    (full / "config.json").write_text(json.dumps({"model_type": "llama", "rms_norm_eps": 0.5,
                                                  "auto_map": {"AutoModelForCausalLM": "modeling_evil.Evil"}}))  # fmt: skip
    _add_hostile_files(full)
    _, folder, _, card = _register(settings, full, base_model_dir=base)
    published = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert published == ["README.md", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                         "tokenizer_config.json"]  # fmt: skip
    for name in ("config.json", "generation_config.json", "tokenizer_config.json"):
        assert (folder / name).read_bytes() == (base / name).read_bytes(), name
    assert sorted(f["path"] for f in card["files"]) == published

    peft = write_peft_artifact(tmp_path / "peft")
    config = json.loads((peft / "adapter_config.json").read_text()) | {"auto_mapping": {"base_model_class": "Evil", "parent_library": "evil"}}
    (peft / "adapter_config.json").write_text(json.dumps(config))
    _add_hostile_files(peft)
    _, folder, _, _ = _register(settings, peft, base_model_dir=base)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                                         "generation_config.json", "tokenizer.json", "tokenizer_config.json"]  # fmt: skip
    published_config = json.loads((folder / "adapter_config.json").read_text())
    assert "auto_mapping" not in published_config and published_config["r"] == 2

    image = tmp_path / "image"
    image.mkdir()
    (image / "my_lora.safetensors").write_bytes((write_image_artifact(tmp_path / "lora") / "pytorch_lora_weights.safetensors").read_bytes())
    _add_hostile_files(image)
    _, folder, _, card = _register(settings, image, task_type="image", base_model_dir=base)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "pytorch_lora_weights.safetensors"]
    assert (folder / "pytorch_lora_weights.safetensors").read_bytes() == (image / "my_lora.safetensors").read_bytes()
    # Renamed, but a copy: it names the artifact file the signed run record lists (models verify checks it).
    assert {f["path"]: f["artifact_path"] for f in card["files"]} == {"README.md": None, "pytorch_lora_weights.safetensors": "my_lora.safetensors"}


def test_a_sharded_full_model_publishes_its_index_and_the_shards_it_names(settings: Settings, tmp_path: Path) -> None:
    base = write_base_model(tmp_path / "base")
    artifact = write_full_artifact(tmp_path / "full")
    (artifact / "model.safetensors").rename(artifact / "model-00001-of-00001.safetensors")
    (artifact / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"weight": "model-00001-of-00001.safetensors"}}))
    (artifact / "unused.safetensors").write_bytes((artifact / "model-00001-of-00001.safetensors").read_bytes())
    _, folder, _, _ = _register(settings, artifact, base_model_dir=base)
    assert {"model.safetensors.index.json", "model-00001-of-00001.safetensors"} <= {p.name for p in folder.iterdir()}
    assert not (folder / "unused.safetensors").exists()


def test_a_full_model_whose_base_model_is_not_here_is_not_published(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the base model's config.json the folder could only carry the artifact's, which was not scored."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PublishError, match="not on this machine"):
        _register(settings, write_full_artifact(tmp_path / "full"), base_model="nobody-here/not-cached")
    assert not [p for p in settings.registry_dir.iterdir()]


def test_an_adapter_config_that_reads_as_no_json_object_is_not_published_and_named(settings: Settings, tmp_path: Path) -> None:
    """An artifact checked before the check read its adapter_config.json: a worded refusal, not a bare parse error."""
    artifact = write_peft_artifact(tmp_path / "artifact")
    (artifact / "adapter_config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PublishError, match="adapter_config.json is nested deeper than 32 levels"):
        _register(settings, artifact, base_model_dir=write_base_model(tmp_path / "base"))
    assert not [p for p in settings.registry_dir.iterdir()]


def test_a_local_base_model_folder_gives_the_tokenizer_and_stays_out_of_the_adapter_config(settings: Settings, tmp_path: Path) -> None:
    base = write_base_model(tmp_path / "base")
    _, folder, _, _ = _register(settings, write_peft_artifact(tmp_path / "artifact"), base_model=str(base))
    assert (folder / "tokenizer_config.json").is_file()
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == "/model"
    assert "base_model" not in parse_front_matter((folder / "README.md").read_text())


def test_the_script_and_its_license_come_from_the_competitor(settings: Settings, tmp_path: Path) -> None:
    repo, commit = register_repo(settings, "alice", {"LICENSE": MIT_TEXT})
    with open_store(settings) as store, store.session() as session:
        competitor_id = get_competitor(session, "alice").id
    _, folder, _, card = _register(settings, write_peft_artifact(tmp_path / "artifact"), competitor_id=competitor_id,
                                   source=ModelSource.CHAMPION)  # fmt: skip
    text = (folder / "README.md").read_text()
    # The card names a repository on the server as the API does to customers: never its path.
    assert str(repo) in card["script"]["repo_url"] and f"- Training script: a working tree on the server@{commit}" in text
    assert str(repo) not in text and str(settings.data_dir) not in text
    assert card["script"]["commit"] == commit and card["license"] == "mit" and card["license_found"] is True
    assert parse_front_matter(text)["license"] == "mit"


def test_a_failed_copy_leaves_no_folder_behind(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="neither"):
        _register(settings, tmp_path / "missing")
    assert not settings.registry_dir.exists() or not list(settings.registry_dir.iterdir())


def test_a_hub_base_model_not_in_the_local_cache_gives_no_tokenizer_and_nothing_is_downloaded(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert base_model_folder(settings, "nobody-here/not-cached") is None
    _, folder, _, _ = _register(settings, write_peft_artifact(tmp_path / "artifact"), base_model="nobody-here/not-cached")
    assert not (folder / "tokenizer.json").exists()
    assert parse_front_matter((folder / "README.md").read_text())["base_model"] == "nobody-here/not-cached"


def test_each_files_digest_is_recorded_once_at_registration(settings: Settings, tmp_path: Path) -> None:
    """Reading a model lists its files from the record: no request hashes a multi-GB folder again."""
    from trainarena.registry import model_files
    from trainarena.store.models import RegisteredModel

    model_id, folder, _, card = _register(settings, write_peft_artifact(tmp_path / "artifact"), base_model_dir=write_base_model(tmp_path / "base"))
    recorded = {entry["path"]: entry["sha256"] for entry in card["files"]}
    assert recorded == {p.name: path_digest(p) for p in folder.iterdir()}
    (folder / "README.md").write_text("changed after registration")
    with open_store(settings) as store, store.session() as session:
        listed = model_files(session.get_one(RegisteredModel, model_id))
    assert {f.path: f.sha256 for f in listed} == recorded


def test_a_link_in_an_artifact_is_never_followed_into_the_model(settings: Settings, tmp_path: Path) -> None:
    """Defence in depth behind the artifact check: a link a script left must not copy a file from
    elsewhere on the server (another customer's upload) into a downloadable model."""
    secret = tmp_path / "someone-elses.jsonl"
    secret.write_text('{"q": "private"}\n')
    artifact = write_peft_artifact(tmp_path / "artifact")
    (artifact / "weights.safetensors").symlink_to(secret)
    _, folder, _, card = _register(settings, artifact, base_model_dir=write_base_model(tmp_path / "base"))
    assert not (folder / "weights.safetensors").exists() and "weights.safetensors" not in {f["path"] for f in card["files"]}


def test_a_registered_model_and_its_download_have_fixed_modes_whatever_the_artifact_had(settings: Settings, tmp_path: Path) -> None:
    """A setuid file or a world-writable folder an artifact brought is neither published setuid nor
    writable by others, on disk or in the downloaded tar."""
    artifact = write_peft_artifact(tmp_path / "artifact")
    (artifact / "extra").mkdir()
    shutil.copyfile("/usr/bin/id", artifact / "extra" / "suid_id")
    os.chmod(artifact / "extra" / "suid_id", 0o6755)
    os.chmod(artifact / "extra", 0o1777)
    os.chmod(artifact / "adapter_model.safetensors", 0o666)
    model_id, folder, _, _ = _register(settings, artifact, base_model_dir=write_base_model(tmp_path / "base"))
    modes = {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}
    assert "extra/suid_id" not in modes and "extra" not in modes  # only what was scored is published
    assert modes.pop(".") == 0o755 and set(modes.values()) == {0o644}, modes
    with tarfile.open(fileobj=io.BytesIO(b"".join(tar_chunks(folder, model_id)))) as tar:
        members = tar.getmembers()
    assert f"{model_id}/adapter_model.safetensors" in {m.name for m in members}
    assert {m.mode for m in members} == {0o644} and all(m.isfile() and m.uid == m.gid == 0 for m in members)


def test_a_registration_whose_transaction_rolls_back_leaves_no_folder(settings: Settings, tmp_path: Path) -> None:
    """The folder is placed before the caller's transaction commits the row: a later failure in that
    transaction (a job's end that cannot be stored) takes the folder with the row."""
    from trainarena.store.models import RegisteredModel

    artifact = write_peft_artifact(tmp_path / "artifact")
    fields = dict(source=ModelSource.JOB, task_type="instruct", base_model="org/base", dataset_digest="e" * 64, score=None,
                  owner_key_id=None, base_model_dir=write_base_model(tmp_path / "base"), same_as_base=NO_CLAIM)  # fmt: skip
    with open_store(settings) as store:
        with pytest.raises(RuntimeError, match="later in the transaction"), store.transaction() as session:
            folder = Path(register_model(settings, session, artifact_dir=artifact, **fields).path)
            assert folder.is_dir()
            raise RuntimeError("later in the transaction")
        assert not folder.exists()
        with store.session() as session:  # a session closed without a commit is a rollback too
            folder = Path(register_model(settings, session, artifact_dir=artifact, **fields).path)
        assert not folder.exists()
        with store.transaction() as session:
            kept = Path(register_model(settings, session, artifact_dir=artifact, **fields).path)
            with pytest.raises(RuntimeError), session.begin_nested():  # a savepoint's end is not the rows' end
                raise RuntimeError("a savepoint rolled back")
            with session.begin_nested():
                pass
        with store.session() as session:  # one session, two transactions: the first one's commit keeps its folder
            also_kept = Path(register_model(settings, session, artifact_dir=artifact, **fields).path)
            session.commit()
            dropped = Path(register_model(settings, session, artifact_dir=artifact, **fields).path)
            session.rollback()
        assert kept.is_dir() and also_kept.is_dir() and not dropped.exists()
        with store.session() as session:
            assert sorted(row.path for row in session.query(RegisteredModel)) == sorted([str(kept), str(also_kept)])
    assert sorted(p.name for p in settings.registry_dir.iterdir()) == sorted([kept.name, also_kept.name])


def test_the_sweep_removes_old_folders_without_a_row_and_spares_young_ones(settings: Settings, tmp_path: Path) -> None:
    """What a process killed between placing a folder and committing its row leaves; a folder younger
    than ``registry.orphan_grace`` may be a registration about to commit. The API sweeps at start."""
    import os
    import time

    from fastapi.testclient import TestClient

    from trainarena.api import create_app
    from trainarena.registry import sweep_registry

    model_id, kept, _, _ = _register(settings, write_peft_artifact(tmp_path / "artifact"), base_model_dir=write_base_model(tmp_path / "base"))
    long_ago = time.time() - 2 * settings.registry.orphan_grace.total_seconds()
    old_orphan, young_orphan = settings.registry_dir / "model-0ld", settings.registry_dir / "model-y0ung"
    old_staging, elsewhere = settings.registry_dir / ".staging-model-k111ed", settings.registry_dir / "operator-notes"
    for folder in (old_orphan, young_orphan, old_staging, elsewhere):
        folder.mkdir()
        (folder / "README.md").write_text("card")
    for folder in (kept, old_orphan, old_staging, elsewhere):
        os.utime(folder, (long_ago, long_ago))
    with open_store(settings) as store:
        with store.session() as session:
            assert sorted(sweep_registry(session, settings)) == sorted([old_orphan, old_staging])
        assert sorted(p.name for p in settings.registry_dir.iterdir()) == sorted([model_id, "model-y0ung", "operator-notes"])
        os.utime(young_orphan, (long_ago, long_ago))
        with TestClient(create_app(settings, store=store)):
            pass
    assert sorted(p.name for p in settings.registry_dir.iterdir()) == sorted([model_id, "operator-notes"])
