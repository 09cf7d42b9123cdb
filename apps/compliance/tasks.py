from celery import shared_task

from . import services


@shared_task(acks_late=True)
def build_package(package_id):
    """Build one evidence package (progress on its row); a done package is left as it is."""
    return services.build_package(package_id).status
