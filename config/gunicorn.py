"""gunicorn settings (`gunicorn -c config/gunicorn.py`): its logs as the same JSON lines, in UTC, as every process."""

# gunicorn's own loggers go through apps.core.logging's formatter instead of gunicorn's local-time format.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "apps.core.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
accesslog = "-"
# No %(t)s: the JSON line's `ts` is the time; gunicorn's own would be local time.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms'
# gunicorn 23+'s control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl): two servers of
# the same user (two checkouts, the tests) would fight over it, and nothing here uses it.
control_socket_disable = True
