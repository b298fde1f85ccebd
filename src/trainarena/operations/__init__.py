"""What an operator does over time: stored tasks and pools (``pools``), and the tournament life cycle
(``tournaments``: create from a pool, run to the end, read back), and the schedule that runs them
unattended (``schedule`` decides what is due, ``serving`` does it). Plain functions over the store, so
the CLI and the scheduler call the same ones."""
