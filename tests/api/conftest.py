"""The API tests' fixtures, defined in api_support.py."""

from api_support import live, tiny  # noqa: F401
