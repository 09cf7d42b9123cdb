import pytest

from apps.billing import metering


@pytest.fixture(autouse=True)
def _fresh_api_counter():
    """Each test starts with no API calls counted by an earlier one (the counter lives in the process)."""
    metering.reset()
    yield
    metering.reset()
