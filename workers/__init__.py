"""The Celery side of distributed mode: the app's tasks (`workers.tasks`), the worker
leases (`workers.leases`), a broker fault guard (`workers.brokerfix`) and the app the `celery`
command line loads (`workers.celery_app`). Every task is a thin call into `convertly.pipeline`;
this package depends on `convertly`, never the other way round."""
