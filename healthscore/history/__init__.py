"""The score history: every run, every account's score in it, and the CRM cache.

`open_store(url)` opens (and migrates) SQLite or PostgreSQL; the store records a
run in one transaction and answers history questions with set queries. The
trend rules themselves are pure functions in `healthscore.core.trends`.
"""

from healthscore.history.cache import source_cache_key
from healthscore.history.models import RUN_FAILED, RUN_RUNNING, RUN_SUCCEEDED
from healthscore.history.store import (
    DB_URL_ENV,
    CacheEntry,
    HistoryEntry,
    HistoryStore,
    RunInfo,
    StoreError,
    UnknownRunError,
    data_dir,
    default_db_url,
    open_store,
    store_exists,
)

__all__ = [
    "DB_URL_ENV",
    "RUN_FAILED",
    "RUN_RUNNING",
    "RUN_SUCCEEDED",
    "CacheEntry",
    "HistoryEntry",
    "HistoryStore",
    "RunInfo",
    "StoreError",
    "UnknownRunError",
    "data_dir",
    "default_db_url",
    "open_store",
    "source_cache_key",
    "store_exists",
]
