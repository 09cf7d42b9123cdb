def test_health_live_answers(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
