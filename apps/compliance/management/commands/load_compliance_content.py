from django.core.management.base import BaseCommand

from apps.compliance import content


class Command(BaseCommand):
    help = "Load the frameworks' controls, SoA, evidence mappings and records of processing from configs/compliance/."

    def handle(self, *args, **options):
        for framework in content.load_all():
            self.stdout.write(f"{framework.code}: {framework.controls.count()} controls")
