"""The model card renderer: pure, so every line it writes is checked here."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trainarena.registry.card import (
    CardFacts,
    Measurement,
    ScriptSource,
    compared_with_base,
    is_hub_id,
    parse_front_matter,
    render_model_card,
)

WHEN = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)


def _facts(**changes) -> CardFacts:
    base = dict(
        model_id="model-0123456789abcdef", source="champion", task_type="instruct", library="peft",
        base_model="HuggingFaceTB/SmolLM2-135M", dataset_digest="d" * 64, license="mit", license_found=True,
        trained_at=WHEN, score=1.234567, measurement=Measurement("eval_loss", "lower", hidden_rows=40),
        script=ScriptSource("alice", "https://github.com/alice/trainer", "a" * 40), run_id=17,
    )  # fmt: skip
    return CardFacts(**{**base, **changes})


def test_the_front_matter_names_base_model_library_tags_license_and_dataset_digest() -> None:
    card = render_model_card(_facts())
    assert parse_front_matter(card) == {
        "base_model": "HuggingFaceTB/SmolLM2-135M", "library_name": "peft", "license": "mit",
        "tags": ["trainarena", "instruct", "lora"], "dataset_digest": "sha256:" + "d" * 64,
    }  # fmt: skip


def test_the_body_says_where_the_model_comes_from_and_how_its_score_was_measured() -> None:
    body = render_model_card(_facts()).split("\n---\n", 1)[1]
    assert "- Task type: instruct" in body
    assert f"- Dataset digest: sha256:{'d' * 64}" in body
    assert f"- Training script: https://github.com/alice/trainer@{'a' * 40}" in body
    assert "- Competitor: alice" in body
    assert "- Score: 1.23457" in body
    assert "- Measured as: eval_loss (lower is better) on 40 hidden rows the script never saw" in body
    assert "- Trained: 2026-11-30T08:15:00+00:00" in body
    assert "- Run: 17" in body and "- License: mit\n" in body
    assert "a tournament champion's run" in body


def test_a_job_model_of_the_house_script_measured_on_a_validation_share() -> None:
    facts = _facts(source="job", script=None, job_id="job-1", run_id=None, license="apache-2.0", license_found=False,
                   measurement=Measurement("eval_loss", "lower", validation_share=0.1))
    body = render_model_card(facts)
    assert "- Training script: house script" in body and "Competitor" not in body
    assert "on a validation share of 10% held out from the training data" in body
    assert "- Job: job-1" in body and "- Run:" not in body
    assert "- License: apache-2.0 (no license found in the script's repository: the operator's default)" in body
    assert "An instruct model trained on trainarena by a customer's training job." in body  # not "A instruct"
    assert "A dpo model trained on trainarena" in render_model_card(_facts(task_type="dpo"))


def test_no_score_and_a_full_model_and_an_image_lora() -> None:
    full = render_model_card(_facts(score=None, measurement=None, library="transformers"))
    assert "- Score: none (no data was held out to measure it)" in full and "Measured as" not in full
    assert parse_front_matter(full)["tags"] == ["trainarena", "instruct"]
    assert "- Weights: transformers (full model, safetensors)" in full
    image = parse_front_matter(render_model_card(_facts(task_type="image", library="diffusers")))
    assert image["library_name"] == "diffusers" and image["tags"] == ["trainarena", "image", "lora"]


def test_a_local_or_builtin_base_model_stays_out_of_the_hub_metadata_but_is_named_in_the_body() -> None:
    for base in ("/data/models/tiny", "trainarena:tiny_llama", "./model"):
        card = render_model_card(_facts(base_model=base, job_id="job-1"))
        assert "base_model" not in parse_front_matter(card)
        assert f"- Base model: {base}" in card  # the customer named it
    # A champion's card is read by anyone: a folder on the server by its name, as the API shows it.
    champion = render_model_card(_facts(base_model="/data/models/tiny"))
    assert "- Base model: tiny (on the server)" in champion and "/data/models" not in champion
    assert is_hub_id("gpt2") and is_hub_id("org/name-1.5B") and not is_hub_id("a/b/c")


@pytest.mark.parametrize(
    ("direction", "score", "base", "improvement", "said"),
    [
        ("lower", 4.448, 4.86, 0.412, "better than the untrained base model by 0.412 (eval_loss 4.448 against the untrained "
                                      "base model's 4.86 on the same validation rows, lower is better)"),
        ("higher", 0.75, 0.5, 0.25, "better than the untrained base model by 0.25 (eval_loss 0.75 against the untrained "
                                    "base model's 0.5 on the same validation rows, higher is better)"),
        ("higher", 0.5, 0.75, -0.25, "worse than the untrained base model by 0.25 (eval_loss 0.5 against the untrained "
                                     "base model's 0.75 on the same validation rows, higher is better): training made it "
                                     "worse on these rows"),
        ("lower", 2.0, 2.0, 0.0, "no better than the untrained base model (eval_loss 2 against the untrained base model's 2 "
                                 "on the same validation rows, lower is better)"),
    ],
)  # fmt: skip
def test_a_job_models_score_is_compared_with_its_base_model_in_the_metrics_direction(direction: str, score: float, base: float,
                                                                                    improvement: float, said: str) -> None:  # fmt: skip
    """A lower loss and a higher reward both count as better; a model worse than its base says so."""
    measurement = Measurement("eval_loss", direction, validation_share=0.2, base_score=base)
    compared = compared_with_base(score, measurement)
    assert compared is not None and compared.base_score == base and compared.improvement == pytest.approx(improvement)
    assert compared.note == said
    body = render_model_card(_facts(score=score, measurement=measurement, job_id="job-1"))
    assert f"- Against the base model: {said}\n" in body


def test_a_score_without_a_base_score_says_why_and_a_champions_says_nothing() -> None:
    missing = Measurement("eval_loss", "lower", validation_share=0.2, base_missing="the base model's evaluation failed: OOM")
    compared = compared_with_base(1.0, missing)
    assert compared is not None and (compared.base_score, compared.improvement) == (None, None)
    assert compared.note == "not compared: the base model's evaluation failed: OOM"
    assert compared_with_base(1.0, Measurement("eval_loss", "lower", hidden_rows=40)) is None
    assert "Against the base model" not in render_model_card(_facts())
