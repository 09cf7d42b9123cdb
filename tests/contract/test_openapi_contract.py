"""The OpenAPI document describes every endpoint: auth, request, responses (problem+json errors), examples."""

import pytest
import yaml


@pytest.fixture
def document(client):
    return yaml.safe_load(client.get("/api/schema/").content)


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


# Open by design: health for monitors, the published JSON Schema of exports, and the download link,
# which carries its own signed credential.
PUBLIC = {
    ("/internal/erp/health", "get"),
    ("/api/v1/reports/export/{export_id}/download", "get"),
    ("/reports/export/{export_id}/download", "get"),
    ("/api/v1/reports/export/schema.json", "get"),
    ("/reports/export/schema.json", "get"),
}


def test_every_operation_names_its_authentication(document):
    schemes = document["components"]["securitySchemes"]
    assert {"knoxApiToken", "cookieAuth", "erpBearer"} <= set(schemes)
    for path, method, operation in operations(document):
        if (path, method) in PUBLIC:
            continue
        named = [name for requirement in operation.get("security", []) for name in requirement]
        assert named and set(named) <= set(schemes), (path, method)


def test_every_operation_documents_success_and_problem_errors_with_examples(document):
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), (path, method)
        for code in ("401", "403", "404", "422", "429"):
            content = responses[code]["content"]["application/problem+json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert content["examples"], (path, method, code)


def test_every_mutating_operation_takes_an_idempotency_key_and_may_be_locked(document):
    mutating = [(p, m, o) for p, m, o in operations(document) if m in ("post", "put", "patch")]
    assert any(p == "/api/v1/erp/inbound/job/progress" for p, _m, _o in mutating)
    for path, method, operation in mutating:
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, (path, method)
        assert {"409", "422", "423"} <= set(operation["responses"]), (path, method)
        success = next(r for c, r in operation["responses"].items() if c.startswith("2"))
        assert "Idempotent-Replayed" in success["headers"]


def test_the_inbound_operation_documents_its_contract(document):
    operation = document["paths"]["/api/v1/erp/inbound/job/progress"]["post"]
    assert operation["security"] == [{"erpBearer": []}]
    assert list(operation["requestBody"]["content"]) == ["application/json"]
    assert operation["requestBody"]["content"]["application/json"]["examples"]
    assert {"200", "401", "403", "404", "409", "422", "423", "429"} <= set(operation["responses"])
