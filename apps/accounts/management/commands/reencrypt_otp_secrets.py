"""Re-encrypt every TOTP secret under the first key of OTP_ENCRYPTION_KEY (after putting a new key first)."""

from django.core.management.base import BaseCommand

from apps.accounts import otp_secrets


class Command(BaseCommand):
    help = (
        "Re-encrypt TOTP secrets under the current (first) OTP_ENCRYPTION_KEY and report backup codes still "
        "hashed under an older key (those work while that key stays in the ring; new codes replace them)."
    )

    def handle(self, *args, **options):
        counts = otp_secrets.reencrypt_all()
        self.stdout.write(
            f"TOTP secrets re-encrypted: {counts['totp']}; backup codes under older keys: {counts['old_codes']}"
        )
