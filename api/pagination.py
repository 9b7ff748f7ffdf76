from django.db.models import QuerySet

MAX_PAGE_SIZE = 200


def page_of(qs: QuerySet, page: int, page_size: int) -> tuple[list, int]:
    """One page of a queryset and the total count. page_size is capped at 200 (API.md)."""
    page = max(1, page)
    size = min(max(1, page_size), MAX_PAGE_SIZE)
    start = (page - 1) * size
    return list(qs[start : start + size]), qs.count()
