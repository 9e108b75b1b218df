"""Fixtures shared by the security tests (see other_account.py)."""

from tests.security.other_account import other_account, shared_folder  # noqa: F401
