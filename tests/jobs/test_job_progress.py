"""A job's progress events read tqdm bars as their counts: the Hugging Face Trainer's bar redraws with
carriage returns many times a second, and the event's message was nearly always the bar
(``45%|####5     | 9/20 [...]``) instead of the loss line printed between (QA). The log text below is
what tqdm 4 and the Trainer write (copied from real output; rates shortened)."""

from __future__ import annotations

import time
from pathlib import Path

from trainarena.jobs.progress import LogFollower, Progress, condense
from trainarena.settings import JobRules

TRAINER_LOSS = "{'loss': 1.2345, 'grad_norm': 0.98, 'learning_rate': 4.5e-05, 'epoch': 0.45}"
# The Trainer's bar on stderr, and its log dict written through tqdm.write, which clears the bar
# ("\r" + spaces + "\r"), prints the line and redraws the bar: all on one stream, no newline after a bar.
TRAINER_STDERR = (
    "\r  0%|          | 0/20 [00:00<?, ?it/s]"
    "\r 40%|####      | 8/20 [00:03<00:04,  2.10it/s]"
    "\r 45%|####5     | 9/20 [00:03<00:04,  2.10it/s]"
    "\r                                                \r" + TRAINER_LOSS + "\n"
    "\r 45%|####5     | 9/20 [00:03<00:04,  2.10it/s]"
    "\r 50%|#####     | 10/20 [00:04<00:04,  2.09it/s]"
    "\r 55%|#####5    | 11/20 [00:04<00:03,  2.11it/s]"
)


def test_a_trainer_log_reads_as_its_loss_line_and_the_bar_as_counts() -> None:
    progress = condense(TRAINER_STDERR.replace("\r", "\n").split("\n"))
    assert progress == Progress(["9/20 (45%)", TRAINER_LOSS, "11/20 (55%)"], TRAINER_LOSS)


def test_bars_alone_read_as_their_counts_with_description_and_postfix() -> None:
    bars = ["Training:  40%|####      | 8/20 [00:03<00:04,  2.10it/s, loss=1.31]",
            "Training:  45%|####5     | 9/20 [00:03<00:04,  2.10it/s, loss=1.23, lr=4e-05]"]  # fmt: skip
    assert condense(bars) == Progress(["Training 9/20 (45%), loss=1.23, lr=4e-05"], "Training 9/20 (45%), loss=1.23, lr=4e-05")
    assert condense(["Map: 9it [00:03,  2.10it/s]"]) == Progress(["Map 9it"], "Map 9it")  # no total: a count of its
    # A line with counts and brackets that is no bar (no time opens its bracket) is the script's own.
    assert condense(["step 9/20 [eval] loss 1.23"]) == Progress(["step 9/20 [eval] loss 1.23"], "step 9/20 [eval] loss 1.23")
    assert condense(["", "   "]) is None


def test_a_bar_redrawn_without_a_newline_is_followed_and_the_loss_line_wins(tmp_path: Path) -> None:
    """A redraw ends at the next carriage return: a bar still drawing (no newline yet) is read, and the
    message stays the newest loss line the look found, though bars came after it."""
    follower = LogFollower(tmp_path, JobRules(progress_lines=5))
    (tmp_path / "stdout.log").write_text("step 8 loss 1.31\nstep 9 loss 1.23\n")
    (tmp_path / "stderr.log").write_text(TRAINER_STDERR)
    progress = follower.new_progress()
    assert progress is not None and progress.message == TRAINER_LOSS
    # The 11/20 redraw is still the newest (no carriage return after it yet): read next time.
    assert progress.lines == ["step 8 loss 1.31", "step 9 loss 1.23", "9/20 (45%)", TRAINER_LOSS, "10/20 (50%)"]
    with (tmp_path / "stderr.log").open("a") as log:
        log.write("\r 60%|######    | 12/20 [00:05<00:03,  2.10it/s]")
    assert follower.new_progress() == Progress(["11/20 (55%)"], "11/20 (55%)")  # only a bar: its counts


def test_a_long_line_without_a_bar_is_read_at_once() -> None:
    """A script's long line of colons (a printed config) made the bar search backtrack quadratically:
    32,000 characters took 31 s, and a megabyte stalled the worker for hours."""
    line = "key: value " * 100_000
    started = time.perf_counter()
    progress = condense([line, " 45%|####5     | 9/20 [00:03<00:04,  2.10it/s]"])
    assert time.perf_counter() - started < 2.0
    assert progress is not None and progress.message == line.strip() and progress.lines[-1] == "9/20 (45%)"
