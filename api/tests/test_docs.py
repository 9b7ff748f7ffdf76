import pytest


@pytest.mark.django_db
def test_openapi_is_served_and_names_the_contract_paths(client):
    spec = client.get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/auth/token",
        "/api/v1/me",
        "/api/v1/orgs/{org_id}/members",
        "/api/v1/orgs/{org_id}/members/import",
    ):
        assert path in spec["paths"]


@pytest.mark.django_db
def test_hand_parsed_bodies_are_still_documented(client):
    spec = client.get("/api/v1/openapi.json").json()
    ballot = spec["paths"]["/api/v1/polls/{poll_id}/ballots"]["post"]["requestBody"]
    assert ballot["required"] and ballot["content"]["application/json"]["schema"]["required"] == ["option_ids"]
    signup = spec["paths"]["/api/v1/activities/{activity_id}/signups"]["post"]["requestBody"]
    assert "answers" in signup["content"]["application/json"]["schema"]["properties"]


@pytest.mark.django_db
def test_api_docs_page_loads_its_assets_from_our_server_not_a_cdn(client):
    html = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
