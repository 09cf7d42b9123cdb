"""`bulk_operations` gates the admin's bulk delete ("Delete selected ..."): a user the flag is off for keeps
one-by-one deletion but loses the action that deletes a whole selection at once."""

BULK_ACTIONS = ("delete_selected",)


class BulkOperationsGateMixin:
    def get_actions(self, request):
        actions = super().get_actions(request)
        if any(name in actions for name in BULK_ACTIONS):
            from .services import is_enabled

            # A database without the flag (a flushed test database, say) keeps Django's default.
            if not is_enabled("bulk_operations", request.user, request=request, default=True):
                for name in BULK_ACTIONS:
                    actions.pop(name, None)
        return actions
