"""The Celery app built from the environment (and `.env`), for the `celery` command line:
`celery -A workers.celery_app:app flower`. `convertly worker` builds the same app itself."""

from convertly.settings import Settings
from workers.tasks import make_celery

app = make_celery(Settings.from_env())
