from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from apps.core import incident_lock


class Command(BaseCommand):
    help = "Turn the incident lock (read-only mode) on or off with a reason, or show it: incident_lock on|off|status"

    def add_arguments(self, parser):
        parser.add_argument("switch", choices=["on", "off", "status"])
        parser.add_argument("--reason", default="", help="why (required for on and off; audited)")

    def handle(self, *args, switch, reason, **options):
        if switch != "status":
            try:
                incident_lock.set_lock(switch == "on", reason=reason, actor=None, source="command")
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        lock = incident_lock.state()
        if lock.enabled:
            self.stdout.write(_("Incident lock: ON (%(reason)s)") % {"reason": lock.reason})
        else:
            self.stdout.write(_("Incident lock: off"))
        if lock.forced_by_env and switch == "off":
            raise CommandError(_("INCIDENT_LOCK_ENABLED is set: the lock stays on until it is removed."))
