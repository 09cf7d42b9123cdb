"""`manage.py recon_run --profile P --file F`: load an ERP export and reconcile it, with progress."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.erp.models import IntegrationProfile
from apps.recon import services
from apps.recon.models import FileSource, FileStatus, ReconConfig


class Command(BaseCommand):
    help = "Load an ERP export (CSV or XLSX) for a profile and reconcile it with the portal's jobs."

    def add_arguments(self, parser):
        parser.add_argument("--profile", required=True, help="Integration profile id or name")
        parser.add_argument("--file", required=True, help="Path of the export file")
        parser.add_argument("--force", action="store_true", help="Load even if these bytes were loaded before")
        parser.add_argument("--encoding", default="", help="utf-8, utf-8-sig, cp1254 (default: detected)")
        parser.add_argument("--delimiter", default="", help="CSV delimiter (default: detected)")
        parser.add_argument("--config-version", type=int, help="Use this config version (default: the newest)")

    def handle(self, *args, profile, file, force, encoding, delimiter, config_version, **options):
        found = IntegrationProfile.objects.filter(pk=int(profile)) if profile.isdigit() else None
        found = found if found is not None and found.exists() else IntegrationProfile.objects.filter(name=profile)
        target = found.first()
        if target is None:
            raise CommandError(f"No integration profile {profile!r}")
        config = None
        if config_version:
            config = ReconConfig.objects.filter(profile=target, version=config_version).first()
            if config is None:
                raise CommandError(f"Profile {target} has no config version {config_version}")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file {file}")
        size = path.stat().st_size

        def progress(rows):
            sys.stderr.write(f"\rloaded {rows:,} rows ({size:,} bytes)")
            sys.stderr.flush()

        try:
            with path.open("rb") as stream:
                entry = services.register_file(
                    stream,
                    name=path.name,
                    profile=target,
                    source=FileSource.COMMAND,
                    force=force,
                    encoding=encoding,
                    delimiter=delimiter,
                    config=config,
                    on_progress=progress,
                )
        except services.DuplicateFile as duplicate:
            first = duplicate.first
            raise CommandError(
                f"{path.name} was registered before as file #{first.pk} "
                f"({first.name}, {first.created_at:%Y-%m-%d %H:%M}); --force loads it again"
            ) from None
        except services.NoTenant:
            raise CommandError("The default profile (no tenant) cannot be reconciled") from None
        sys.stderr.write("\n")
        if entry.status != FileStatus.LOADED:
            for error in entry.errors:
                self.stderr.write(f"row {error['row']} column {error['column']} {error['header']}: {error['message']}")
            if entry.error_count > len(entry.errors):
                self.stderr.write(f"... and {entry.error_count - len(entry.errors)} more errors")
            raise CommandError(f"File #{entry.pk} rejected with {entry.error_count} errors; nothing was loaded")
        self.stdout.write(
            f"file #{entry.pk}: {entry.row_count} rows in {entry.load_ms} ms ({entry.encoding}, {entry.file_format})"
        )
        if entry.formula_count:
            self.stdout.write(f"  {entry.formula_count} formula cells kept as text (not evaluated)")
        recon_run = services.run(entry, config=config)
        counts = ", ".join(f"{k} {v}" for k, v in recon_run.counts.items())
        self.stdout.write(
            f"run #{recon_run.pk} (config v{recon_run.config.version}) in {recon_run.duration_ms} ms: {counts}; "
            f"auto-cleared {recon_run.cleared_count}"
        )
