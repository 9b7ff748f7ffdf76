def test_health_answers_ok_without_auth(api):
    r = api().get("/api/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
