"""API documentation pages are self-contained."""

import re


def test_swagger_ui_loads_nothing_from_a_cdn(client):
    page = client.get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, "the page should reference its assets"
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
