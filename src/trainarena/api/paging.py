"""Pagination of list endpoints: ``limit`` and ``offset`` query parameters (capped by settings
``api.page_size_max``), and on the id-keyed lists (files, jobs, models, runs) also ``after`` (an id a
page answered: the items after it; an unknown one is a 422), and the answer ``{"data": [...], "has_more": bool}``; and the store's limits on
the values a request gives (ids, seeds, names), so that a value the store cannot hold is a 422."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from trainarena.api.context import app_settings
from trainarena.api.errors import STORE_INT_MAX, ApiError

T = TypeVar("T")


__all__ = ["NAME_MAX_LENGTH", "STORE_INT_MAX", "CursorWindow", "Page", "PageWindow", "Window"]
NAME_MAX_LENGTH = 100  # the store's name columns (competitors, tournaments, pools, tasks)


class Page(BaseModel, Generic[T]):
    data: list[T] = Field(description="This page's items, in the endpoint's order.")
    has_more: bool = Field(description="Whether items follow this page (ask again with offset + limit).")


@dataclass(frozen=True)
class Window:
    limit: int
    offset: int
    after: str | None = None

    def page(self, items: Sequence[T]) -> tuple[list[T], bool]:
        """This window's items of ``items`` and whether more follow."""
        return list(items[self.offset:self.offset + self.limit]), len(items) > self.offset + self.limit


Limit = Annotated[int | None, Query(ge=1, description="Items to return (default settings api.page_size; at most api.page_size_max).")]
Offset = Annotated[int, Query(ge=0, le=STORE_INT_MAX, description="Items to skip.")]


def _window(request: Request, limit: int | None, offset: int, paging: str) -> Window:
    """The page asked for; a limit over ``api.page_size_max`` is refused, saying how to page on (``paging``)."""
    rules = app_settings(request).api
    if limit is not None and limit > rules.page_size_max:
        raise ApiError(422, "invalid_request", f"limit {limit} is over the most a page holds, {rules.page_size_max}; "
                       f"ask for fewer and page with {paging}", limit=limit, max=rules.page_size_max)  # fmt: skip
    return Window(rules.page_size if limit is None else limit, offset)


def window(request: Request, limit: Limit = None, offset: Offset = 0) -> Window:
    return _window(request, limit, offset, "offset")


def cursor_window(
    request: Request,
    limit: Limit = None,
    offset: Offset = 0,
    after: Annotated[str | None, Query(max_length=NAME_MAX_LENGTH, description="An id a page answered: the items after it.")] = None,
) -> Window:
    # The id-keyed lists page by `after` (docs/api.md, "Rate limits and pages"): an offset makes the database step over what it skips.
    return replace(_window(request, limit, offset, "after (the id of a page's last item)"), after=after or None)


PageWindow = Annotated[Window, Depends(window)]
CursorWindow = Annotated[Window, Depends(cursor_window)]
