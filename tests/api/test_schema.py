"""OpenAPI schema and the offline Swagger UI (design §10)."""

import re
from pathlib import Path

import pytest
import yaml
from django.test import Client
from drf_spectacular.validation import validate_schema
from openapi_spec_validator import validate as validate_spec
from rest_framework.test import APIClient

from tests.contract import served_schema

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def schema(db):
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def test_every_operation_documents_errors(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation["responses"]
            assert "400" in responses, (method, path)
            error_ref = responses["400"]["content"]["application/json"]["schema"]["$ref"]
            assert error_ref.endswith("/Error")
            # Token routes (a download link, a part URL) take no JWT: no 401.
            token_route = path.endswith("/file/") or "/parts/" in path
            if not path.startswith("/api/v1/auth/") and not token_route:
                assert {"401", "403"} <= responses.keys(), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)


def test_schema_lists_paramedic_operations(schema):
    paths = schema["paths"]
    assert {"get", "post"} <= paths["/api/v1/paramedics/"].keys()
    assert {"get", "put", "patch"} <= paths["/api/v1/paramedics/{id}/"].keys()
    create = paths["/api/v1/paramedics/"]["post"]
    assert "201" in create["responses"] and "409" in create["responses"]
    write = schema["components"]["schemas"]["ParamedicWriteRequest"]["properties"]
    assert write["password"]["writeOnly"] is True


def test_swagger_ui_is_served_without_a_cdn(db):
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert Client().get(asset).status_code == 200, asset


def test_docs_can_be_limited_to_supervisors(settings, db, supervisor, paramedic):
    settings.API_DOCS_PUBLIC = False
    anonymous = Client().get("/api/schema/")
    assert anonymous.status_code in (401, 403)
    medic = Client()
    medic.force_login(paramedic.user)
    assert medic.get("/api/docs/").status_code == 403
    console = Client()
    console.force_login(supervisor)
    assert console.get("/api/schema/").status_code == 200
    assert console.get("/api/docs/").status_code == 200


def test_the_served_schema_is_the_committed_one():
    """docs/openapi.yaml is the contract device teams build against: an API change
    shows up as a change to it in review. Regenerate with `make schema` and note the
    change in docs/api-changelog.md."""
    committed = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    assert committed == served_schema(), (
        "the served schema differs from docs/openapi.yaml: run `make schema`, review the "
        "diff and record it in docs/api-changelog.md"
    )


def test_the_committed_schema_is_valid_openapi_3_1():
    document = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    assert document["openapi"] == "3.1.0"
    validate_spec(document)
