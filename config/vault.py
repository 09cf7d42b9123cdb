"""Secrets from HashiCorp Vault / OpenBao KV v2 (hvac), for config/settings.py's env helpers.

When VAULT_ADDR is set, a variable that is neither in the environment nor named by `NAME_FILE` is looked up
in one KV v2 secret (VAULT_MOUNT, default `secret`; VAULT_PATH, default `tezgah`) whose keys are variable
names: `DJANGO_SECRET_KEY`, `AUDIT_SIGNING_KEY`, ... The secret is read once, at the first such lookup.
Environment and files stay the default and win; without VAULT_ADDR nothing here runs.
No Django imports: settings.py loads this before Django is configured.
"""

from environ.environ import FileAwareMapping


class VaultUnavailable(RuntimeError):
    pass


def read_kv2(addr, *, token, mount, path, namespace=None, timeout=5.0, verify=True) -> dict:
    """The key/value pairs of the latest version of `mount`/`path`; VaultUnavailable (never the token) otherwise."""
    import hvac
    import hvac.exceptions
    import requests

    client = hvac.Client(url=addr, token=token, namespace=namespace or None, timeout=timeout, verify=verify)
    try:
        answer = client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)
    except hvac.exceptions.Forbidden:
        raise VaultUnavailable(f"Vault at {addr} refused the token for {mount}/{path}") from None
    except hvac.exceptions.InvalidPath:
        raise VaultUnavailable(f"Vault at {addr} has no secret {mount}/{path}") from None
    except (hvac.exceptions.VaultError, requests.RequestException) as exc:
        raise VaultUnavailable(f"Vault at {addr} could not be read ({type(exc).__name__})") from None
    data = (answer or {}).get("data", {}).get("data")
    if not isinstance(data, dict):
        raise VaultUnavailable(f"Vault at {addr}: {mount}/{path} is not a KV v2 secret")
    return {str(k): v if isinstance(v, str) else str(v) for k, v in data.items()}


class VaultAwareMapping(FileAwareMapping):
    """`NAME_FILE`, then `NAME`, then (with VAULT_ADDR) the key NAME of the Vault secret."""

    def __init__(self, env=None, cache=True):
        super().__init__(env, cache)
        self._vault = None

    def __getitem__(self, key):
        try:
            return super().__getitem__(key)
        except KeyError:
            if key.startswith("VAULT_") or not self.env.get("VAULT_ADDR"):
                raise
        value = self.vault_values().get(key)
        if value is None:
            raise KeyError(key)
        return value

    def vault_values(self) -> dict:
        if self._vault is None:
            get = lambda name, default="": FileAwareMapping.get(self, name, default)  # noqa: E731
            self._vault = read_kv2(
                get("VAULT_ADDR"),
                token=get("VAULT_TOKEN").strip(),
                mount=get("VAULT_MOUNT", "secret"),
                path=get("VAULT_PATH", "tezgah"),
                namespace=get("VAULT_NAMESPACE"),
                timeout=float(get("VAULT_TIMEOUT_SECONDS", "5")),
                verify=get("VAULT_CACERT") or True,
            )
        return self._vault
