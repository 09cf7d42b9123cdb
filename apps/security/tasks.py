from celery import shared_task


@shared_task
def purge_expired_ip_entries() -> int:
    """Delete expired IP list entries (they stopped matching when they expired; this only tidies)."""
    from .iplists import purge_expired

    return purge_expired()
