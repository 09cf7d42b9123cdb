from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from apps.erp import rotation
from apps.erp.models import IntegrationProfile


class Command(BaseCommand):
    help = (
        "Rotate an ERP integration profile's key ring: retire current, promote next to current, generate a new "
        "next and print it once (audited). A profile without keys starts its ring from KEYRING_CURRENT."
    )

    def add_arguments(self, parser):
        parser.add_argument("profile", help="profile id or name")

    def handle(self, *args, profile, **options):
        found = IntegrationProfile.objects.filter(pk=int(profile)) if profile.isdigit() else None
        found = found if found is not None and found.exists() else IntegrationProfile.objects.filter(name=profile)
        if found.count() != 1:
            raise CommandError(_("No single ERP profile with id or name %(profile)s.") % {"profile": profile})
        result = rotation.rotate(found.get(), actor=None, source="command")
        self.stdout.write(_("Current key: %(fp)s") % {"fp": result.current_fingerprint})
        if result.retired_fingerprint:
            self.stdout.write(_("Retired key: %(fp)s") % {"fp": result.retired_fingerprint})
        self.stdout.write(_("Next key: %(fp)s") % {"fp": result.next_fingerprint})
        if result.new_next_secret:
            self.stdout.write(
                _("New next secret (shown once; give it to the ERP): %(secret)s") % {"secret": result.new_next_secret}
            )
