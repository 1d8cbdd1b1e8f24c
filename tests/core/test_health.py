"""/healthz and /readyz (design §10)."""

from core import health


def test_healthz_answers_without_auth_or_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_dependencies(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}


def test_readyz_answers_503_when_a_check_fails(client, db, monkeypatch):
    def broken():
        raise ConnectionError("storage down")

    monkeypatch.setattr(health, "_check_storage", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "storage": "unavailable"}
