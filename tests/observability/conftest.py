"""Fixtures of the observability tests: a clean statistics buffer and tenant memo, /metrics readable."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.observability import tenant_labels
from apps.observability.stats_buffer import buffer

INTERNAL_TOKEN = "observability-test-internal-token"
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {INTERNAL_TOKEN}"}


@pytest.fixture(autouse=True)
def _clean_observability_state():
    buffer.drain()
    tenant_labels.reset()
    yield
    buffer.drain()
    tenant_labels.reset()


@pytest.fixture
def internal_token(settings):
    settings.INTERNAL_TOKEN = INTERNAL_TOKEN
    settings.INTERNAL_ALLOWED_IPS = []
    return settings


def scrape(client) -> dict:
    """{(sample name, frozenset of labels): value} of /metrics."""
    response = client.get("/metrics", **BEARER)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
