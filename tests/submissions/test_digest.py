"""The source digest ignores cosmetics (comments, docstrings, layout, file names and order) and sees code."""

from __future__ import annotations

from trainarena.submissions import source_digest
from trainarena.submissions.digest import normalized_python

CODE = '''"""Module docstring."""
import math


def area(r):
    """Area of a circle."""
    return math.pi * r ** 2  # the formula
'''

SAME_CODE_RESTYLED = '''# a new header comment
import math
def area(r):
  """A different docstring."""

  return math.pi*r**2
'''


def test_comments_docstrings_and_layout_do_not_change_the_digest() -> None:
    assert normalized_python(CODE.encode()) == normalized_python(SAME_CODE_RESTYLED.encode())


def test_a_changed_operator_changes_the_digest() -> None:
    changed = CODE.replace("** 2", "** 3")
    assert normalized_python(CODE.encode()) != normalized_python(changed.encode())


def test_strings_that_are_not_statements_are_kept() -> None:
    assert normalized_python(b'x = "a"\n') != normalized_python(b'x = "b"\n')
    assert normalized_python(b'"a".join(y)\n') != normalized_python(b'"b".join(y)\n')


def test_f_string_statements_are_kept_since_they_run_code() -> None:
    assert normalized_python(b'f"{launch()}"\n') != normalized_python(b"\n")


def test_untokenizable_python_falls_back_to_raw_bytes() -> None:
    broken = b'x = """unterminated\n'
    assert normalized_python(broken) == broken


def test_digest_is_independent_of_file_names_and_order() -> None:
    files = [("train.py", CODE.encode()), ("config.yaml", b"lr: 0.1\n")]
    moved = [("conf/hp.yaml", b"lr: 0.1\n"), ("src/main.py", SAME_CODE_RESTYLED.encode())]
    assert source_digest(files) == source_digest(moved)


def test_non_python_files_count_byte_for_byte() -> None:
    assert source_digest([("c.yaml", b"lr: 0.1\n")]) != source_digest([("c.yaml", b"lr: 0.2\n")])


def test_ignored_documentation_does_not_count() -> None:
    base = [("train.py", CODE.encode())]
    with_readme = [*base, ("README.md", b"# hello"), ("LICENSE", b"MIT")]
    assert source_digest(base, ignore_suffixes=[".md"], ignore_names=["LICENSE"]) == source_digest(
        with_readme, ignore_suffixes=[".md"], ignore_names=["LICENSE"]
    )
    assert source_digest(base) != source_digest(with_readme)
