import time

from django.core.management.base import BaseCommand, CommandError

from apps.compliance import services, tasks
from apps.compliance.models import EvidencePackage, FrameworkCode, PackageStatus


class Command(BaseCommand):
    help = "Generate the evidence package of a framework and period, e.g. --framework soc2 --period 2026-Q4."

    def add_arguments(self, parser):
        parser.add_argument("--framework", required=True, choices=FrameworkCode.values)
        parser.add_argument("--period", required=True, help="2026-Q4, 2026-11, 2026-W47 or 2026-11-05")
        parser.add_argument("--queue", action="store_true", help="hand it to the Celery worker and follow progress")

    def handle(self, *args, framework, period, queue, **options):
        try:
            package = services.request_package(framework, period)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if queue:
            tasks.build_package.delay(package.pk)
            last = None
            while True:
                package.refresh_from_db()
                if (package.progress, package.step) != last:
                    self.stdout.write(f"{package.progress:3d}% {package.step}")
                    last = (package.progress, package.step)
                if package.status in (PackageStatus.DONE, PackageStatus.FAILED):
                    break
                time.sleep(1)
        else:
            try:
                tasks.build_package.apply(args=[package.pk], throw=True)
            except Exception as exc:
                raise CommandError(f"package {package.pk} failed: {exc}") from exc
        package = EvidencePackage.objects.get(pk=package.pk)
        if package.status != PackageStatus.DONE:
            raise CommandError(f"package {package.pk} failed: {package.error}")
        self.stdout.write(self.style.SUCCESS(f"{services.package_path(package)} sha256 {package.sha256}"))
