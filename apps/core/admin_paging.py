"""A changelist paginator that never runs an unbounded COUNT(*) over a large table."""

from functools import cached_property

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections


class CappedCountPaginator(Paginator):
    """Counts at most ADMIN_COUNT_LIMIT + 1 rows: a filtered page costs a bounded scan, not a full count.

    The unfiltered count on PostgreSQL comes from the planner's estimate (pg_class.reltuples).
    """

    @cached_property
    def count(self):
        limit = settings.ADMIN_COUNT_LIMIT
        qs = self.object_list
        query = getattr(qs, "query", None)
        if query is not None and not query.where and connections[qs.db].vendor == "postgresql":
            with connections[qs.db].cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [qs.model._meta.db_table]
                )
                row = cursor.fetchone()
            if row and row[0] > limit:
                return int(row[0])
        return qs[: limit + 1].count() if query is not None else len(qs)
