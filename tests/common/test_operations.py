"""Health probes, the OpenAPI schema and docs, and settings for production."""

import subprocess
import sys

from django.conf import settings


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database(client, db):
    body = client.get("/readyz").json()
    assert body["status"] == "ok" and body["checks"]["database"] == "ok"


def test_openapi_schema_documents_the_api(client, db):
    response = client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/usage", "/api/v1/costs", "/api/v1/cost-centers", "/api/v1/price-lists"):
        assert any(p.rstrip("/") == path for p in schema["paths"]), path


def test_api_docs_are_served_without_internet(client, db):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "cdn.jsdelivr" not in html and "unpkg" not in html


def test_production_settings_pass_check_deploy():
    env = {
        "SECRET_KEY": "x" * 64 + "-production-secret-for-the-check-only",
        "ALLOWED_HOSTS": "costs.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/costportal",
        "DJANGO_SETTINGS_MODULE": "costportal.settings.production",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
