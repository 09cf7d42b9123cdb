"""A changelist paginator that never runs an unbounded COUNT(*) over a large table."""

from functools import cached_property

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections


class CappedCountPaginator(Paginator):
    """Counts at most ADMIN_COUNT_LIMIT + 1 rows: a filtered page costs a bounded scan, not a full count.

    The unfiltered count on PostgreSQL comes from the planner's estimate (pg_class.reltuples).
    `count_kind` tells the template which it is: "exact", "capped" (more than the limit) or "estimate".
    """

    count_kind = "exact"

    @property
    def count_limit(self):
        return settings.ADMIN_COUNT_LIMIT

    @cached_property
    def count(self):
        limit = self.count_limit
        qs = self.object_list
        query = getattr(qs, "query", None)
        if query is None:
            return len(qs)
        if not query.where and connections[qs.db].vendor == "postgresql":
            with connections[qs.db].cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [qs.model._meta.db_table]
                )
                row = cursor.fetchone()
            if row and row[0] > limit:
                self.count_kind = "estimate"
                return int(row[0])
        counted = qs[: limit + 1].count()
        if counted > limit:
            self.count_kind = "capped"
        return counted
