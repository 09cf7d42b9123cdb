import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(autouse=True)
def signing_key(settings):
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = pem(key)
    return key


@pytest.fixture(autouse=True)
def witness_file(settings, tmp_path):
    """Each test its own witness file: one left by another test's database would (rightly) fail verification."""
    path = tmp_path / "audit-witness.json"
    settings.AUDIT_WITNESS_FILE = str(path)
    return path
