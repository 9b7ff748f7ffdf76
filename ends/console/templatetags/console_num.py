"""Points figures with thousands separators, whatever the locale's number settings."""

from django import template

register = template.Library()


@register.filter
def pts(value) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "0" if value in (None, "") else str(value)
