"""Header links between the panel and the console: `{% if request.user|may_use_admin %}`."""

from django import template

from apps.accounts import selectors

register = template.Library()

register.filter("may_use_admin", selectors.may_use_admin)
register.filter("may_use_panel", selectors.may_use_panel)
