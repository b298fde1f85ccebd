"""trainarena."""
