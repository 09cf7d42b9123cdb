"""Check an evidence package offline: `python -m apps.compliance.verify package.zip --public-key audit.pem`.

Needs only the standard library and `cryptography` (no Django, no database). Checks that manifest.sig is the
audit key's Ed25519 signature of manifest.json's exact bytes, that every file the manifest lists is in the
zip with that sha256 and size, that the zip holds no file the manifest does not list, and that the audit
checkpoint the manifest covers carries a valid signature of the same key. Exit 0 when all hold, 1 otherwise.
The same signature check with openssl is in docs/compliance.md.
"""

import argparse
import base64
import hashlib
import json
import sys
import zipfile

from cryptography.exceptions import InvalidSignature

from apps.audit import signatures

MANIFEST, SIGNATURE, PUBLIC_KEY = "manifest.json", "manifest.sig", "audit-public-key.pem"
OUTSIDE_MANIFEST = {MANIFEST, SIGNATURE, PUBLIC_KEY}


def problems(path, public_key) -> list[str]:
    """Every reason the package at `path` is not intact and signed by `public_key` (empty: it is)."""
    found = []
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"not a readable zip: {exc}"]
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names or SIGNATURE not in names:
            return ["manifest.json or manifest.sig is missing"]
        manifest_bytes = archive.read(MANIFEST)
        try:
            public_key.verify(base64.b64decode(archive.read(SIGNATURE).strip(), validate=True), manifest_bytes)
        except (InvalidSignature, ValueError):
            found.append("manifest.sig is not the audit key's signature of manifest.json")
        try:
            manifest = json.loads(manifest_bytes)
            listed = {f["name"]: f for f in manifest["files"]}
        except (ValueError, KeyError, TypeError):
            return [*found, "manifest.json is not a manifest"]
        for name, entry in sorted(listed.items()):
            if name not in names:
                found.append(f"{name}: listed in the manifest but not in the zip")
                continue
            data = archive.read(name)
            if hashlib.sha256(data).hexdigest() != entry.get("sha256") or len(data) != entry.get("size"):
                found.append(f"{name}: sha256 differs from the manifest (the file was changed)")
        for name in sorted(names - set(listed) - OUTSIDE_MANIFEST):
            found.append(f"{name}: in the zip but not in the manifest")
        checkpoint = manifest.get("audit_checkpoint")
        if checkpoint and not signatures.verify(public_key, checkpoint):
            found.append("the audit checkpoint in the manifest does not carry a valid signature")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package")
    parser.add_argument("--public-key", required=True, help="the audit signing key's public key (PEM), kept apart")
    args = parser.parse_args(argv)
    with open(args.public_key, encoding="ascii") as handle:
        key = signatures.load_public_key(handle.read())
    found = problems(args.package, key)
    for problem in found:
        print(f"FAIL {problem}")
    if not found:
        print(f"OK {args.package}: manifest signed by key {signatures.key_id(key)}, every file matches")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
