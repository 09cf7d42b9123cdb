"""Moved to apps.core.permissions (generic DRF permission classes belong in core); kept so branches still in
flight that import from here keep working. Import from apps.core.permissions; remove this module after the merge."""

from apps.core.permissions import VerifiedSessionOrToken, capability

__all__ = ["VerifiedSessionOrToken", "capability"]
