"""Serve chosen files of npm packages (node_modules) as static files, not the packages' whole trees.

Hand-written because Django's FileSystemFinder can only expose whole directories, and echarts' dist/
is 46 MB of builds we do not use; settings.NPM_STATIC_FILES maps static paths to node_modules paths.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Warning as CheckWarning
from django.core.files.storage import FileSystemStorage


class NpmFilesFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        self.root = Path(settings.NPM_ROOT)
        self.files = dict(settings.NPM_STATIC_FILES)

    def _storage(self, static_path):
        source = self.root / self.files[static_path]
        storage = FileSystemStorage(location=str(source.parent))
        storage.prefix = str(Path(static_path).parent)
        return storage, source.name

    def check(self, **kwargs):
        missing = [p for p in self.files.values() if not (self.root / p).is_file()]
        if missing:
            return [
                CheckWarning(
                    f"npm files missing under {self.root}: {', '.join(missing)}",
                    hint="Run `make install` (it runs `npm ci` from package-lock.json).",
                    id="reporting.W001",
                )
            ]
        return []

    def find(self, path, find_all=False, **kwargs):
        if path in self.files and (self.root / self.files[path]).is_file():
            found = str(self.root / self.files[path])
            return [found] if find_all or kwargs.get("all") else found
        return []

    def list(self, ignore_patterns):
        for static_path in self.files:
            if (self.root / self.files[static_path]).is_file():
                storage, name = self._storage(static_path)
                yield name, storage
