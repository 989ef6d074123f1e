"""Durable state: what the API and the workers share about jobs, stored files, folders, API
keys and webhooks.

    base.py      every state Protocol, with its contract
    sqlite/      the embedded engine: one SQLite database (database.py), one module per store
    redis/       the distributed engine: client helpers, one module per store, and the
                 sync-conversion replies the Celery executor sends through the same Redis
"""
