"""The passkey ceremonies for real: headless Chromium with a CDP virtual authenticator against the live server.

Sign in with password + TOTP, register a passkey on the passkeys page, sign out, sign in with password +
passkey, reach the admin index, then remove the passkey. The RP id is `localhost` (the live server's host).
Screenshots of the second-factor step and of the passkeys page land in var/test/screenshots/passkeys/.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django_otp_webauthn.models import WebAuthnCredential

from apps.accounts import services as account_services
from apps.audit.models import AuditLog
from apps.security.models import SecurityEvent
from tests.conftest import PASSWORD, confirmed_device, make_user, totp_code

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(settings.BASE_DIR) / os.environ.get("TEZGAH_VAR_DIR", "var/test") / "screenshots" / "passkeys"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
    ),
]


@pytest.fixture
def webauthn_live(serial_live_server, settings):
    assert serial_live_server.url.startswith("http://localhost:")
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [serial_live_server.url]
    # The clock runs (a browser and a live server): a sign-in code verified just after a 30-second step ends would
    # otherwise record a drift of -1, and the step-up's next-step code would then fall outside the window.
    settings.OTP_TOTP_SYNC = False
    return serial_live_server.url


@pytest.fixture
def page(webauthn_live, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(locale="tr-TR", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                }
            },
        )
        yield page
        browser.close()


def password_step(page, base, user):
    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/mfa/verify/")


def test_an_admin_registers_a_passkey_signs_in_with_it_and_removes_it(webauthn_live, page):
    base = webauthn_live
    user = make_user("anahtarli", superuser=True)
    device = confirmed_device(user)
    backup_codes = account_services.issue_backup_codes(user)
    SHOTS.mkdir(parents=True, exist_ok=True)

    # Password + TOTP; no passkey yet, so no passkey button.
    password_step(page, base, user)
    assert page.locator("#passkey-verification-button").count() == 0
    page.fill("input[name=token]", totp_code(device))
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    # Name it, give a fresh code (step-up), then register it with the virtual authenticator.
    page.click("a[href='/admin/mfa/passkeys/']")
    page.screenshot(path=str(SHOTS / "passkeys-empty.png"), full_page=True)
    page.fill("input[name=name]", "İş dizüstü")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/mfa/step-up/*")
    page.fill("input[name=token]", totp_code(device, offset_steps=1))
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/mfa/passkeys/")
    page.locator("#passkey-register-button").wait_for()
    page.screenshot(path=str(SHOTS / "passkeys-register-step.png"), full_page=True)
    page.click("#passkey-register-button")
    page.wait_for_selector("td:has-text('İş dizüstü')")
    page.screenshot(path=str(SHOTS / "passkeys-registered.png"), full_page=True)
    passkey = WebAuthnCredential.objects.get(user=user)
    assert passkey.confirmed and passkey.name == "İş dizüstü"

    # Sign out; sign in again with password + passkey.
    page.context.clear_cookies()
    password_step(page, base, user)
    button = page.locator("#passkey-verification-button")
    button.wait_for()
    assert button.inner_text() == "Geçiş anahtarı ile doğrula"
    page.screenshot(path=str(SHOTS / "second-factor.png"), full_page=True)
    button.click()
    page.wait_for_url(f"{base}/admin/")
    assert page.locator("#user-tools a[href='/admin/mfa/passkeys/']").text_content() == "Geçiş anahtarları"

    # Removal asks for a fresh second factor; the passkey answers it.
    page.goto(f"{base}/admin/mfa/passkeys/")
    page.click("button[name=remove]")
    page.wait_for_url(f"{base}/admin/mfa/step-up/*")
    page.locator("#passkey-verification-button").wait_for()
    page.screenshot(path=str(SHOTS / "step-up.png"), full_page=True)
    page.locator("#passkey-verification-button").click()
    page.wait_for_url(f"{base}/admin/mfa/passkeys/")
    page.click("button[name=remove]")
    page.wait_for_url(f"{base}/admin/login/")
    assert not WebAuthnCredential.objects.filter(user=user).exists()
    # The session had signed in with that passkey, so it signs in again; without a passkey there is no button.
    assert "geçiş anahtarıyla giriş yapmıştınız" in page.inner_text("body")
    password_step(page, base, user)
    assert page.locator("#passkey-verification-button").count() == 0
    page.screenshot(path=str(SHOTS / "second-factor-without-passkey.png"), full_page=True)
    page.fill("input[name=token]", backup_codes[0])  # the TOTP codes of this minute are spent
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"auth.mfa_device_added", "auth.mfa_device_removed", "auth.step_up"} <= actions
    logins = AuditLog.objects.filter(action="auth.login").values_list("payload", flat=True)
    assert any(p.get("method") == "passkey" for p in logins)
    events = set(SecurityEvent.objects.values_list("event_type", flat=True))
    assert {"mfa_device_added", "mfa_device_removed"} <= events
    assert not page.errors, page.errors
