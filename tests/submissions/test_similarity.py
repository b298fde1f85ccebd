"""The near-duplicate measure (submissions.similarity): its properties on generated code, and the
shipped examples: a disguised copy is found, different examples are not."""

from __future__ import annotations

import io
import keyword
import random
import tokenize
from pathlib import Path

import pytest
from disguised import disguise
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trainarena.settings import RegistrationRules
from trainarena.submissions.similarity import (
    Closest,
    closest,
    kgram_hashes,
    normalised_tokens,
    similarity,
    tree_fingerprints,
    winnow,
)

RULES = RegistrationRules()
K, WINDOW, MIN_SIZE = RULES.similarity_k, RULES.similarity_window, RULES.similarity_min_fingerprints
EXAMPLES = Path(__file__).parents[2] / "examples" / "competitors"
OPERATORS = ["+", "-", "*", "/", "%", "//", "**", "&", "|", "^", "<<", ">>"]
COMPARISONS = ["<", ">", "==", "!=", "<=", ">="]
seeds = st.integers(min_value=0, max_value=2**32)


def random_program(seed: int, statements: int = 40) -> str:
    """Valid Python of assignments, branches, loops and functions, drawn from ``seed``: two seeds give
    unrelated code (the operators and shapes vary, not only the names)."""
    rng = random.Random(seed)
    names = [f"name{i}" for i in range(8)]

    def expression() -> str:
        parts = [rng.choice([*names, str(rng.randint(0, 99))]) for _ in range(rng.randint(2, 4))]
        return parts[0] + "".join(f" {rng.choice(OPERATORS)} {part}" for part in parts[1:])

    lines = [f"{name} = {rng.randint(1, 9)}" for name in names]
    for index in range(statements):
        shape = rng.randrange(4)
        if shape == 0:
            lines.append(f"{rng.choice(names)} = {expression()}")
        elif shape == 1:
            lines += [f"if {expression()} {rng.choice(COMPARISONS)} {expression()}:", f"    {rng.choice(names)} = {expression()}"]
        elif shape == 2:
            lines += [f"for {rng.choice(names)} in range({rng.randint(1, 9)}):", f"    {rng.choice(names)} += {expression()}"]
        else:
            lines += [f"def function{index}({', '.join(rng.sample(names, 2))}):", f"    return {expression()}"]
    return "\n".join(lines) + "\n"


def fingerprints(source: str) -> frozenset[int]:
    return tree_fingerprints([("train.py", source.encode())], k=K, window=WINDOW)


def rename_identifiers(source: str, new_name) -> str:
    """Every identifier (not keyword) replaced by ``new_name(old)``, consistently, through tokenize."""
    tokens = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        renamed = token.type == tokenize.NAME and not keyword.iskeyword(token.string)
        tokens.append((token.type, new_name(token.string) if renamed else token.string))
    return tokenize.untokenize(tokens)


def identifiers(source: str) -> list[str]:
    return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type == tokenize.NAME and not keyword.iskeyword(t.string)]  # fmt: skip


def example_tree(name: str) -> list[tuple[str, bytes]]:
    root = EXAMPLES / name
    return [(path.relative_to(root).as_posix(), path.read_bytes()) for path in sorted(root.rglob("*.py"))]


@given(seeds)
def test_a_tree_is_identical_to_itself(seed: int) -> None:
    prints = fingerprints(random_program(seed))
    assert prints and similarity(prints, prints) == 1.0


@given(seeds, seeds)
def test_similarity_is_symmetric_and_between_0_and_1(seed_a: int, seed_b: int) -> None:
    a, b = fingerprints(random_program(seed_a)), fingerprints(random_program(seed_b, statements=25))
    assert similarity(a, b, min_size=MIN_SIZE) == similarity(b, a, min_size=MIN_SIZE)
    assert 0.0 <= similarity(a, b, min_size=MIN_SIZE) <= 1.0


@given(seeds, st.data())
def test_renaming_every_identifier_changes_nothing(seed: int, data: st.DataObject) -> None:
    source = random_program(seed)
    fresh = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True).filter(lambda n: not keyword.iskeyword(n))
    names = sorted(set(identifiers(source)))
    chosen = data.draw(st.lists(fresh, min_size=len(names), max_size=len(names), unique=True))
    mapping = dict(zip(names, chosen, strict=True))

    renamed = rename_identifiers(source, mapping.__getitem__)

    assert similarity(fingerprints(source), fingerprints(renamed)) == 1.0


@settings(max_examples=50)
@given(seeds, seeds)
def test_unrelated_programs_score_low(seed_a: int, seed_b: int) -> None:
    assume(seed_a != seed_b)
    assert similarity(fingerprints(random_program(seed_a)), fingerprints(random_program(seed_b)), min_size=MIN_SIZE) < 0.3


@given(seeds, seeds, seeds)
def test_a_shared_run_of_window_plus_k_tokens_is_always_found(seed_a: int, seed_b: int, seed_shared: int) -> None:
    """Winnowing's guarantee: two files sharing a run of window + k - 1 tokens share a fingerprint."""
    shared = random_program(seed_shared, statements=4)
    assume(len(normalised_tokens(shared.encode())) >= WINDOW + K - 1)
    a = fingerprints(random_program(seed_a, statements=5) + shared)
    b = fingerprints(shared + random_program(seed_b, statements=5))
    assert a & b


def test_literals_comments_and_docstrings_do_not_count() -> None:
    plain = "def f(x):\n    return x * 2 + 1\n"
    dressed = 'def f(x):\n    """Double it."""\n    # and add one\n    return x * 3 + 7\n'
    assert normalised_tokens(plain.encode()) == normalised_tokens(dressed.encode())
    assert normalised_tokens(b"x = 'a' + f'{y}'\n") == ["N", "=", "S", "+", "S", "NEWLINE"]


def test_winnowing_keeps_the_minimum_of_every_window() -> None:
    assert winnow([5, 3, 9, 4, 8, 1, 7], 3) == {3, 4, 1}
    assert winnow([5, 3], 4) == {3}
    assert winnow([], 4) == set()
    assert kgram_hashes(["a", "b", "c"], 2) == kgram_hashes(["x", "a", "b", "c"], 2)[1:]


def test_a_small_tree_cannot_look_like_a_copy_by_a_few_shared_idioms() -> None:
    big, small = frozenset(range(200)), frozenset(range(5))
    assert similarity(small, big) == 1.0
    assert similarity(small, big, min_size=MIN_SIZE) == 5 / MIN_SIZE
    assert similarity(frozenset(), big) == 0.0


@pytest.mark.parametrize("name", ["baseline", "torchloop", "hostile", "instruct_only", "trl_defaults"])
def test_a_disguised_copy_of_an_example_is_closest_to_its_original(name: str) -> None:
    original = example_tree(name)
    copy = [(path, disguise(content.decode(), seed=7).encode()) for path, content in original]
    assert all(new != old for (_, new), (_, old) in zip(copy, original, strict=True))
    examples = [(other.name, tree_fingerprints(example_tree(other.name), k=K, window=WINDOW))
                for other in sorted(EXAMPLES.iterdir())]  # fmt: skip

    found = closest(tree_fingerprints(copy, k=K, window=WINDOW), examples, min_size=MIN_SIZE)

    assert found is not None and found.name == name
    assert found.similarity >= RULES.similarity_flag_threshold


@pytest.mark.parametrize(("a", "b"), [("baseline", "image_baseline"), ("hostile", "torchloop"),
                                      ("instruct_only", "image_defaults"), ("crasher", "trl_defaults")])  # fmt: skip
def test_different_examples_score_low(a: str, b: str) -> None:
    prints_a, prints_b = (tree_fingerprints(example_tree(n), k=K, window=WINDOW) for n in (a, b))
    assert similarity(prints_a, prints_b, min_size=MIN_SIZE) < 0.3


def test_closest_takes_the_first_of_equals_and_none_of_nothing() -> None:
    a = frozenset(range(30))
    assert closest(a, [("x", frozenset(range(15))), ("y", frozenset(range(15)))]) == Closest("x", 1.0)
    assert closest(a, []) is None
