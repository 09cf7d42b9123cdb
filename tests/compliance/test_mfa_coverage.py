"""The mfa_coverage evidence counts a confirmed passkey as a second factor, like a confirmed TOTP device."""

import pytest

from apps.compliance.evidence import mfa_coverage
from tests.conftest import confirmed_device, make_passkey, make_user

pytestmark = pytest.mark.django_db


def test_a_confirmed_passkey_counts_as_a_second_factor_and_an_unconfirmed_one_does_not():
    with_totp = make_user("totp_user")
    confirmed_device(with_totp)
    with_passkey = make_user("passkey_user")
    make_passkey(with_passkey)
    with_both = make_user("both_user")
    confirmed_device(with_both)
    make_passkey(with_both)
    pending = make_user("pending_user")
    make_passkey(pending, confirmed=False)

    evidence = mfa_coverage(None)

    rows = {row["user_id"]: row for row in evidence["users"]}
    assert rows[with_totp.pk]["mfa"] and rows[with_totp.pk]["methods"] == ["totp"]
    assert rows[with_passkey.pk]["mfa"] and rows[with_passkey.pk]["methods"] == ["passkey"]
    assert rows[with_both.pk]["methods"] == ["totp", "passkey"]
    assert not rows[pending.pk]["mfa"] and rows[pending.pk]["methods"] == []
    assert evidence["status"] == "attention"
    assert evidence["coverage_percent"] == 75.0
