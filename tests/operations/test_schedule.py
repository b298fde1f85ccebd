"""The schedule of `serve` as a pure decision over the store's facts: due times on each kind's grid,
unfinished tournaments driven on (never created again), hold-backs respected, no busy wake-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trainarena.operations.schedule import Create, Drive, KindFacts, Sleep, latest_due, next_action, next_due
from trainarena.settings import ScheduleRules

RULES = ScheduleRules()  # text every 14 days from the anchor, image 14 days shifted by 7
ANCHOR = RULES.anchor


def facts(text: KindFacts | None = None, image: KindFacts | None = None) -> list[KindFacts]:
    return [text or KindFacts("text", None, None), image or KindFacts("image", None, None)]


def test_the_grids_alternate_a_week_apart() -> None:
    now = ANCHOR + timedelta(days=20)
    assert latest_due("text", RULES, now) == ANCHOR + timedelta(days=14)
    assert latest_due("image", RULES, now) == ANCHOR + timedelta(days=7)
    assert next_due("text", RULES, now) == ANCHOR + timedelta(days=28)
    assert next_due("image", RULES, now) == ANCHOR + timedelta(days=21)
    assert latest_due("image", RULES, ANCHOR + timedelta(days=1)) is None  # before the image grid starts


def test_a_new_store_is_due_at_once_text_first() -> None:
    now = ANCHOR + timedelta(days=100)
    assert next_action(facts(), RULES, now) == Create("text", "text", ANCHOR + timedelta(days=98))
    created = KindFacts("text", None, now)
    assert next_action(facts(created), RULES, now) == Create("image", "image", ANCHOR + timedelta(days=91))


def test_an_unfinished_tournament_is_driven_not_created_again() -> None:
    now = ANCHOR + timedelta(days=100)
    running = KindFacts("text", 7, ANCHOR + timedelta(days=60))  # even past its next due time
    done = KindFacts("image", None, ANCHOR + timedelta(days=92))
    assert next_action(facts(running, done), RULES, now) == Drive("text", 7)


def test_creations_go_before_drives() -> None:
    now = ANCHOR + timedelta(days=100)
    running = KindFacts("text", 7, ANCHOR + timedelta(days=98))
    assert next_action(facts(running), RULES, now) == Create("image", "image", ANCHOR + timedelta(days=91))


def test_sleeps_until_the_earliest_due_time_or_hold_back() -> None:
    now = ANCHOR + timedelta(days=100)
    text = KindFacts("text", None, ANCHOR + timedelta(days=98, hours=1))
    image = KindFacts("image", None, ANCHOR + timedelta(days=91, hours=1))
    assert next_action(facts(text, image), RULES, now) == Sleep(ANCHOR + timedelta(days=105))
    # A refused creation holds its kind back until the next due time: no retry in a tight loop.
    refused = KindFacts("text", None, None, held_back_until=ANCHOR + timedelta(days=112))
    assert next_action(facts(refused, image), RULES, now) == Sleep(ANCHOR + timedelta(days=105))
    # A faulted drive rests a while, then goes on.
    resting = KindFacts("text", 7, None, held_back_until=now + timedelta(minutes=10))
    assert next_action(facts(resting, image), RULES, now) == Sleep(now + timedelta(minutes=10))
    assert next_action(facts(resting, image), RULES, now + timedelta(minutes=10)) == Drive("text", 7)


def test_a_disabled_kind_is_never_due() -> None:
    rules = ScheduleRules(image_enabled=False)
    now = ANCHOR + timedelta(days=100)
    assert next_action(facts(KindFacts("text", None, now)), rules, now) == Sleep(ANCHOR + timedelta(days=112))
    assert next_action(facts(), ScheduleRules(text_enabled=False, image_enabled=False), now) == Sleep(None)


@given(
    every=st.integers(60, 10**6),  # schedule intervals are at least a minute
    offset=st.integers(0, 10**6),
    elapsed=st.integers(0, 10**8),
    created_ago=st.one_of(st.none(), st.integers(0, 10**8)),
)
def test_never_busy_and_never_twice_per_due_time(every: int, offset: int, elapsed: int, created_ago: int | None) -> None:
    rules = ScheduleRules(text_every=timedelta(seconds=every), image_every=timedelta(seconds=every),
                          image_offset=timedelta(seconds=offset))
    now = ANCHOR + timedelta(seconds=elapsed)
    last = None if created_ago is None else now - timedelta(seconds=created_ago)
    action = next_action([KindFacts("text", None, last)], rules, now)
    due = latest_due("text", rules, now)
    assert due is not None and due <= now < due + rules.text_every
    if isinstance(action, Create):
        assert last is None or last < action.due_at == due
        # Once created, nothing more is due before the next due time, which is in the future.
        after = next_action([KindFacts("text", None, now)], rules, now)
        assert after == Sleep(due + rules.text_every) and after.until > now
    else:
        assert isinstance(action, Sleep) and action.until == due + rules.text_every and action.until > now


def test_settings_take_seconds_or_iso_durations(monkeypatch) -> None:
    from trainarena.settings import Settings

    monkeypatch.setenv("TRAINARENA_SCHEDULE__TEXT_EVERY", "90.5")
    monkeypatch.setenv("TRAINARENA_SCHEDULE__IMAGE_OFFSET", "P3D")
    monkeypatch.setenv("TRAINARENA_SCHEDULE__ANCHOR", "2026-01-01T00:00:00")
    schedule = Settings().schedule
    assert schedule.text_every == timedelta(seconds=90.5) and schedule.image_offset == timedelta(days=3)
    assert schedule.anchor == datetime(2026, 1, 1, tzinfo=UTC)


def test_durations_read_in_their_largest_unit() -> None:
    from trainarena.operations.serving import duration_text

    assert [duration_text(timedelta(seconds=s)) for s in (14 * 86400, 36 * 3600, 600, 2.5)] == ["14d", "36h", "10m", "2.5s"]
