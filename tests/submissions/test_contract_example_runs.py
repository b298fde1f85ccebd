"""The minimal script in docs/contract.md, run as the platform runs it (argv, environment, deadline) on
a tiny model built from code: it must train, exit 0 before the deadline and leave a valid artifact."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainarena.contract import RunSpec, TaskType, script_environment
from trainarena.settings import ArtifactRules

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
BUDGET_SECONDS = 35  # the example keeps 3.5 s to save; imports alone can take 20 s on a busy 2-core box, leaving it 10 s of steps


def _example_script() -> str:
    doc = DOC.read_text(encoding="utf-8")
    (script,) = re.findall(r"^```python example-script\n(.*?)^```", doc, flags=re.MULTILINE | re.DOTALL)
    return script


def _tiny_model(directory: Path) -> None:
    from trainarena.assets.model import TinyLlamaShape, build_model, save_model
    from trainarena.assets.tokenizer import train_tokenizer

    texts = [f"add {a} and {b}: {a + b}" for a in range(30) for b in range(30)]
    tokenizer = train_tokenizer(texts, vocab_size=300, model_max_length=128)
    shape = TinyLlamaShape(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=1, max_position_embeddings=128)
    save_model(build_model(tokenizer, shape, seed=0), tokenizer, directory)


@pytest.mark.slow
def test_documented_example_script_trains_and_leaves_a_valid_artifact(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from trainarena.execution.artifacts import validate_artifact
    from trainarena.tasks.instruct.spec import InstructDatasetSpec

    submission, inputs, output = tmp_path / "submission", tmp_path / "inputs", tmp_path / "output"
    for directory in (submission, inputs, output):
        directory.mkdir()
    (submission / "train.py").write_text(_example_script())
    _tiny_model(inputs / "model")
    rows = [{"instruction": f"add {a} and {b}", "input": "", "output": str(a + b)} for a in range(10) for b in range(5)]
    (inputs / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    spec = InstructDatasetSpec(source="x", field_instruction="instruction", field_output="output", field_input="input")
    (inputs / "dataset_spec.json").write_text(json.dumps(spec.for_script("train.jsonl")))

    run = RunSpec(run_id="doc-example", task_type=TaskType.INSTRUCT, dataset_file="train.jsonl",
                  budget_seconds=BUDGET_SECONDS, seed=3)
    argv = run.argv("train.py")
    # The sandbox binds these host directories onto /inputs and /output; here the paths are rewritten.
    argv = [a.replace("/inputs", str(inputs)).replace("/output", str(output)) for a in argv]
    started = time.time()
    env = script_environment(run, started + run.budget_seconds) | {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, *argv[1:]], cwd=submission, env=env, capture_output=True, text=True,
                            timeout=run.budget_seconds + 30)

    assert result.returncode == 0, result.stderr[-2000:]
    steps = int(re.search(r"trained (\d+) steps", result.stdout)[1])
    assert steps > 0, result.stdout
    assert time.time() < started + run.budget_seconds, "the example must exit before its deadline"
    check = validate_artifact(output, TaskType.INSTRUCT, ArtifactRules())
    assert check.ok, check.reason
    base, trained = load_file(next((inputs / "model").glob("*.safetensors"))), load_file(next(output.glob("*.safetensors")))
    assert any(not base[name].equal(trained[name]) for name in base), "the weights did not change"
