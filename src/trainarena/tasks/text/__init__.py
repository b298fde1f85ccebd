"""Helpers shared by the text task types (rows, splits, scoring models); not a task type itself."""
