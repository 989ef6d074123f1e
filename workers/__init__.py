"""Worker-side entry points: the embedded pool's task shims (and, in distributed mode, the
Celery app). Every task is a thin call into `convertly.service`."""
