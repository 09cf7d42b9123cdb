"""Shared fixtures: two tenants, a user per role on tenant A, and clients signed in with TOTP."""

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import services as account_services
from apps.accounts.capabilities import ROLES

from . import factories

PASSWORD = "correct horse battery staple"


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL (CI does)")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL (CI does)")
    for item in items:
        if "postgres" in item.keywords and "postgresql" not in engine:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield


_audit_guards = {"removed": False}


@pytest.fixture(autouse=True)
def _audit_guards_around_flush(request):
    """Transactional tests end with a flush (DELETE on SQLite, TRUNCATE on PostgreSQL) that the audit
    table's append-only triggers refuse: drop them just for that flush and put them back before the next
    database test, outside its transaction so they stay."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    from apps.audit import db_guards

    request.getfixturevalue("django_db_setup")
    if _audit_guards["removed"]:
        with request.getfixturevalue("django_db_blocker").unblock():
            db_guards.install(connection)
        _audit_guards["removed"] = False
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    yield
    if transactional:
        db_guards.remove(connection)
        _audit_guards["removed"] = True


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness would dominate the suite; the hasher is not what the tests check.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def totp_code(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    """The code an authenticator app would show now (or `offset_steps` periods from now)."""
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset_steps)
    return f"{code:0{device.digits}d}"


@pytest.fixture
def tenant_a(db):
    return factories.TenantFactory(name="Anadolu Döküm", slug="anadolu")


@pytest.fixture
def tenant_b(db):
    return factories.TenantFactory(name="Boğaziçi Pres", slug="bogazici")


def make_user(username, *, roles=(), tenants=(), superuser=False, staff=True):
    user = factories.UserFactory(username=username, is_staff=staff, is_superuser=superuser)
    if roles:
        user.groups.set(Group.objects.filter(name__in=roles))
    for tenant in tenants:
        account_services.grant_tenant_access(user, tenant)
    return user


def confirmed_device(user) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def make_passkey(user, *, name="test key", confirmed=True):
    """A stored passkey row (random credential id, placeholder COSE key): for lists, counts and removal. A real
    ceremony needs a browser authenticator (tests/accounts/test_passkeys_browser.py)."""
    import os

    from django_otp_webauthn.models import WebAuthnCredential

    return WebAuthnCredential.objects.create(
        user=user, name=name, confirmed=confirmed, credential_id=os.urandom(32), public_key=b"\xa0"
    )


def verified_client(client, user):
    """Sign `client` in as `user` with a confirmed TOTP device, as if both factors had been given."""
    device = confirmed_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def role_users(tenant_a):
    """One user per role, each granted tenant A only."""
    return {role: make_user(f"{role}_a", roles=[role], tenants=[tenant_a]) for role in ROLES}


@pytest.fixture
def superuser(db):
    return make_user("root", superuser=True)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _role_groups(request):
    """Transactional tests flush the role groups the migrations made; restore them."""
    if request.node.get_closest_marker("django_db") is None:
        return
    from django.apps import apps as django_apps
    from django.contrib.auth.models import Group

    from apps.accounts.roles import sync_role_groups

    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock():
        if not Group.objects.filter(name="analyst").exists():
            sync_role_groups(django_apps)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a transactional test's flush (which empties the role groups the migrations made), put the groups
    back, so the tests that follow, here or in later directories, find their roles."""
    yield
    marker = item.get_closest_marker("django_db")
    # The session's last test: its teardown has already dropped the test database, and nothing follows.
    if marker is None or not marker.kwargs.get("transaction") or nextitem is None:
        return
    from django.apps import apps as django_apps
    from pytest_django.plugin import blocking_manager_key

    from apps.accounts.roles import sync_role_groups

    with item.config.stash[blocking_manager_key].unblock():
        sync_role_groups(django_apps)


@pytest.fixture
def serial_live_server(live_server):
    """The live server, answering one request at a time when the test database is in-memory SQLite.

    Django's live server hands that one shared SQLite connection to every request thread; the overview's
    three fragments fetched at once then ran queries on it concurrently and hung the test. A file or
    PostgreSQL database gives each thread its own connection and keeps the real concurrency.
    """
    import threading

    from django.db import connection

    httpd = live_server.thread.httpd
    app = httpd.get_app()
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield live_server
        return
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return app(environ, start_response)

    httpd.set_app(one_at_a_time)
    yield live_server
    httpd.set_app(app)
