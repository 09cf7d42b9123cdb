"""The confirmation page of an admin action that asks for input before it runs."""

from django.contrib.admin import helpers
from django.template.response import TemplateResponse


def confirmation_page(model_admin, request, *, template, title, action, form, queryset, **extra):
    """Render `template` with what it needs to re-post the same selection with `confirm=yes` and `form`."""
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "queryset": queryset,
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": action,
        **extra,
    }
    return TemplateResponse(request, template, context)
