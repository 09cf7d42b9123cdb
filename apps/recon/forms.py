"""The break queue's filters (GET, in the URL) and its bulk-assign form."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .constants import AGE_BUCKETS, BUCKET_LABELS
from .models import BreakKind, BreakState


class BreakFilterForm(forms.Form):
    state = forms.MultipleChoiceField(label=_("State"), choices=BreakState.choices, required=False)
    kind = forms.MultipleChoiceField(label=_("Type"), choices=BreakKind.choices, required=False)
    bucket = forms.MultipleChoiceField(
        label=_("Age"), choices=[(name, BUCKET_LABELS[name]) for name, _l, _h in AGE_BUCKETS], required=False
    )
    assignee = forms.CharField(label=_("Assignee"), max_length=150, required=False)
    tenant = forms.SlugField(label=_("Tenant"), max_length=64, required=False)
    q = forms.CharField(label=_("Key or ERP id"), max_length=100, required=False)
    page = forms.IntegerField(label=_("Page"), min_value=1, max_value=100000, required=False)


class BulkAssignForm(forms.Form):
    breaks = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)
    assignee = forms.CharField(max_length=150, required=False)

    def __init__(self, *args, break_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["breaks"].choices = [(i, i) for i in break_ids]
