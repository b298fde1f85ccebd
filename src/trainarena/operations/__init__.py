"""What an operator does over time: stored tasks and pools (``pools``), and the tournament life cycle
(``tournaments``: create from a pool, run to the end, read back). Plain functions over the store, so
the CLI and a scheduler call the same ones."""
