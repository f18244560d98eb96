"""Page numbers for console lists (the services take limit/offset)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

PAGE_SIZE = 25


@dataclass(frozen=True)
class Page:
    number: int
    size: int = PAGE_SIZE
    total: int = 0

    @classmethod
    def at(cls, number: int, size: int = PAGE_SIZE) -> Page:
        return cls(max(1, number), size)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def with_total(self, total: int) -> Page:
        return Page(self.number, self.size, total)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_item(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last_item(self) -> int:
        return min(self.total, self.offset + self.size)

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def fetch_page(number: int, fetch: Callable[[int, int], tuple[list[T], int]],
               size: int = PAGE_SIZE) -> tuple[list[T], Page]:
    """One page of a list through `fetch(limit, offset) -> (items, total)`. A page past the end (an old link, a
    typed URL, a list that shrank) shows the last page, never "Page 999 of 2" with nothing on it."""
    page = Page.at(number, size)
    items, total = fetch(page.size, page.offset)
    page = page.with_total(total)
    if page.number > page.pages:
        page = Page(page.pages, size, total)
        items, total = fetch(page.size, page.offset)
        page = page.with_total(total)
    return items, page
