from django.db.models import QuerySet

MAX_PAGE_SIZE = 200
# Beyond any real list; keeps OFFSET inside a 64-bit integer so a huge ?page= is an empty page, not a 500.
MAX_PAGE = 10**9


def page_of(qs: QuerySet, page: int, page_size: int) -> tuple[list, int]:
    """One page of a queryset and the total count. page_size is capped at 200 (API.md)."""
    page = min(max(1, page), MAX_PAGE)
    size = min(max(1, page_size), MAX_PAGE_SIZE)
    start = (page - 1) * size
    return list(qs[start : start + size]), qs.count()
