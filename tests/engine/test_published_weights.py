"""The published vector and its u16 form: properties under hypothesis, and worked examples."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainarena.engine.published_weights import (
    FALLBACK_HOLDER,
    REMAINDER_HOLDER,
    U16_MAX,
    KindWeights,
    hybrid_week,
    publish,
    tournament_share,
    u16_vector,
    u16_weights,
)
from trainarena.settings import Settings, WeightRules

START = datetime(2025, 7, 21, tzinfo=UTC)
HYBRID = WeightRules(hybrid_start_date=START)  # 0.25 + 0.25 per week, cap 1


def _tournament(kind: str, tid: int, weights: dict[str, float]) -> KindWeights:
    return KindWeights(kind, tid, weights, max(0.0, 1.0 - math.fsum(weights.values())))


@st.composite
def tournament_weights(draw, kind: str, tid: int) -> KindWeights:
    names = draw(st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8))
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=len(names), max_size=len(names)))
    scale = draw(st.floats(0.0, 1.0))
    total = math.fsum(raw)
    weights = {n: scale * w / total for n, w in zip(names, raw, strict=True)} if total > 0 else dict.fromkeys(names, 0.0)
    return _tournament(kind, tid, weights)


rules_strategy = st.builds(
    WeightRules,
    hybrid_start=st.floats(0.0, 1.0),
    hybrid_step=st.floats(0.0, 1.0),
    hybrid_cap=st.floats(0.0, 1.0),
    text_share=st.floats(0.0, 1.0),
    hybrid_start_date=st.one_of(st.none(), st.just(START)),
)
offsets = st.integers(-30, 400).map(lambda days: START + timedelta(days=days, hours=3))


@given(rules_strategy, offsets, st.one_of(st.none(), tournament_weights("text", 1)), st.one_of(st.none(), tournament_weights("image", 2)))
def test_weights_fallback_and_remainder_sum_to_one(rules, at, text, image) -> None:
    published = publish([r for r in (text, image) if r is not None], at, rules)
    total = math.fsum([*(w for _, w in published.weights), published.undistributed, published.fallback])
    assert total == pytest.approx(1.0, abs=1e-9)
    assert all(w >= 0.0 for _, w in published.weights) and published.undistributed >= -1e-12
    assert published.fallback == pytest.approx(1.0 - published.ratio)
    assert published.tournament_ids == tuple(r.tournament_id for r in (text, image) if r is not None)


@given(rules_strategy, offsets, tournament_weights("text", 1), tournament_weights("image", 2), st.randoms())
def test_order_is_heaviest_first_then_by_name_whatever_the_input_order(rules, at, text, image, rng) -> None:
    published = publish([text, image], at, rules)
    shuffled_text = list(text.weights.items())
    rng.shuffle(shuffled_text)
    again = publish([image, KindWeights("text", 1, dict(shuffled_text), text.undistributed)], at, rules)
    assert [name for name, _ in again.weights] == [name for name, _ in published.weights]
    keys = [(-w, name) for name, w in published.weights]
    assert keys == sorted(keys)


@given(rules_strategy, st.integers(-10, 200), st.integers(0, 200))
def test_tournament_share_is_monotone_in_the_week_and_capped(rules, week, later) -> None:
    share = tournament_share(week, rules)
    assert 0.0 <= share <= rules.hybrid_cap
    assert tournament_share(week + later, rules) >= share
    assert tournament_share(None, rules) == 1.0


def test_the_schedule_by_date() -> None:
    assert hybrid_week(START - timedelta(seconds=1), START) == -1
    assert hybrid_week(START, START) == 0
    assert hybrid_week(START + timedelta(days=13, hours=23), START) == 1
    assert hybrid_week(START, None) is None
    shares = [publish([], START + timedelta(weeks=w), HYBRID).ratio for w in (-1, 0, 1, 2, 3, 9)]
    assert shares == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_a_start_date_without_a_zone_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_WEIGHTS__HYBRID_START_DATE", "2025-07-21T00:00:00")
    assert Settings().weights.hybrid_start_date == START


def test_worked_example_two_kinds_in_week_one() -> None:
    text = KindWeights("text", 7, {"a": 0.5, "b": 0.4}, 0.1)
    image = KindWeights("image", 8, {"c": 0.5}, 0.5)
    published = publish([image, text], START + timedelta(weeks=1), HYBRID.model_copy(update={"text_share": 0.6}))
    # ratio 0.5: a = 0.5*0.6*0.5, b = 0.5*0.6*0.4, c = 0.5*0.4*0.5; remainder 0.5*(0.6*0.1 + 0.4*0.5)
    assert [name for name, _ in published.weights] == ["a", "b", "c"]
    assert [w for _, w in published.weights] == pytest.approx([0.15, 0.12, 0.1])
    assert published.undistributed == pytest.approx(0.13) and published.fallback == 0.5
    assert published.week == 1 and published.tournament_ids == (7, 8)


def test_a_kind_never_played_leaves_its_share_undistributed() -> None:
    published = publish([KindWeights("text", 1, {"a": 1.0}, 0.0)], START, WeightRules())
    assert published.weights == (("a", 0.5),) and published.undistributed == 0.5 and published.fallback == 0.0


def test_publish_refuses_two_of_a_kind_and_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="two text tournaments"):
        publish([KindWeights("text", 1, {}, 1.0), KindWeights("text", 2, {}, 1.0)], START, WeightRules())
    with pytest.raises(ValueError, match="kind 'audio'"):
        publish([KindWeights("audio", 1, {}, 1.0)], START, WeightRules())


@given(st.lists(st.floats(0.0, 1e6), max_size=50))
def test_u16_max_is_65535_and_order_is_kept(values) -> None:
    ints = u16_weights(values)
    assert len(ints) == len(values) and all(0 <= v <= U16_MAX for v in ints)
    if any(v > 0 for v in values):
        assert max(ints) == U16_MAX
        assert ints[values.index(max(values))] == U16_MAX
    else:
        assert ints == [0] * len(values)
    for x, ix in zip(values, ints, strict=True):
        for y, iy in zip(values, ints, strict=True):
            if x >= y:
                assert ix >= iy


@pytest.mark.parametrize("bad", [[-0.1, 1.0], [math.nan], [math.inf]])
def test_u16_refuses_what_the_chain_refuses(bad) -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        u16_weights(bad)


def test_u16_vector_routes_fallback_remainder_and_the_unmapped() -> None:
    entries = [("a", "HK_A", 0.3), ("b", None, 0.1), ("c", "HK_A", 0.1), ("d", "HK_D", 0.0)]
    vector = u16_vector(entries, fallback=0.4, undistributed=0.1, fallback_hotkey="HK_F", remainder_hotkey="HK_R")
    # HK_A 0.4, HK_F 0.4, HK_R 0.2 (remainder 0.1 + b's 0.1); d's zero is not sent
    assert vector.hotkeys == ("HK_A", "HK_F", "HK_R")
    assert vector.values == (U16_MAX, U16_MAX, round(0.2 / 0.4 * U16_MAX))
    assert vector.holders == (("a", "c"), (FALLBACK_HOLDER,), (REMAINDER_HOLDER,))
    assert vector.left_out == ("b",) and vector.unassigned == 0.0

    bare = u16_vector(entries, fallback=0.4, undistributed=0.1, fallback_hotkey=None, remainder_hotkey=None)
    assert bare.hotkeys == ("HK_A",) and bare.unassigned == pytest.approx(0.6)
    to_remainder = u16_vector(entries, fallback=0.4, undistributed=0.1, fallback_hotkey=None, remainder_hotkey="HK_R")
    assert dict(zip(to_remainder.hotkeys, to_remainder.holders, strict=True))["HK_R"] == (FALLBACK_HOLDER, REMAINDER_HOLDER)
