"""The server `manage.py bench_inbound` runs (`gunicorn apps.erp.bench_wsgi`): the real application, with
apps.erp.bench_urls as URLconf, which adds one bare view doing one INSERT. Nothing else serves that view."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
settings.ROOT_URLCONF = "apps.erp.bench_urls"

application = get_wsgi_application()
