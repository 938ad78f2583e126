"""The stream tests' fixtures, defined in stream_support.py (tests import its helpers by that name:
``conftest`` is also another test folder's module name)."""

from stream_support import kafka_url, keyed, nats_url, redis_url, tiny  # noqa: F401
