"""The demo tournaments (``trainarena demo``): example competitors turned into git repositories, the
text demo's and the image demo's entrants, default champions and task sources."""
