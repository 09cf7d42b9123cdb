"""Errors the job service raises; callers turn them into a 409, a form error or a report line."""

from django.utils.translation import gettext_lazy as _


class JobStatusError(Exception):
    """A status change that the state machine or the job's data refuses."""

    code = "job-status-error"

    def __init__(self, message, *, job=None, from_status=None, to_status=None):
        super().__init__(str(message))
        self.message = message
        self.job = job
        self.from_status = from_status
        self.to_status = to_status


class IllegalTransition(JobStatusError):
    code = "illegal-transition"

    def __init__(self, *, job, from_status, to_status, allowed):
        allowed_text = ", ".join(sorted(allowed)) or _("none (the status is final)")
        message = _("A job cannot go from %(from)s to %(to)s; allowed next statuses: %(allowed)s") % {
            "from": from_status,
            "to": to_status,
            "allowed": allowed_text,
        }
        super().__init__(message, job=job, from_status=from_status, to_status=to_status)
        self.allowed = sorted(allowed)


class InvalidProgress(JobStatusError):
    code = "invalid-progress"
