"""What an attacker with the database owner's rights does: drop the guards, change rows, put the guards back."""

from django.db import connection

from apps.audit import db_guards


def tamper(sql, params=()):
    db_guards.remove(connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        db_guards.install(connection)
