"""Prometheus exposition: counters from every process (multi-process files) plus scrape-time collectors.

Settings point PROMETHEUS_MULTIPROC_DIR at a folder every process (web, workers) writes its counters
to; apps add collectors that read shared state (the database) with `register_collector` in ready().
"""

from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

_collectors = []


def register_collector(collector) -> None:
    if all(type(c) is not type(collector) for c in _collectors):
        _collectors.append(collector)


def metrics_view(request):
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in _collectors:
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
