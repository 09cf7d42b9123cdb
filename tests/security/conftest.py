"""Fixtures shared by the sign-in lockout tests of this folder."""

import time

import pytest
import time_machine


@pytest.fixture
def loose_login_throttle(settings):
    """The sign-in throttles (THROTTLE_LOGIN_RATE, THROTTLE_LOGIN_USER_RATE) are another control
    (test_rate_limits.py): out of the way for tests about axes' lockout."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "login": "10000/min",
            "login_user": "10000/min",
        },
    }


@pytest.fixture
def frozen():
    """Time stopped in the middle of a 30-second TOTP step, so a code stays valid for the whole test."""
    now = time.time()
    with time_machine.travel(now - now % 30 + 15, tick=False) as traveller:
        yield traveller
