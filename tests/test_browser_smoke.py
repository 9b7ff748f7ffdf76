import pytest

from conftest import PHONE


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_portal_renders_in_chromium(page_factory):
    page = page_factory(PHONE)
    resp = page.goto("/api/v1/health")
    assert resp.status == 200
    assert "ok" in page.content()
