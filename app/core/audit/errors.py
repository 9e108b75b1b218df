"""Audit errors, in a module light enough to import on the GUI thread (no SQLAlchemy)."""


class AuditError(Exception):
    """The access could not be recorded, so nothing was shown. The message says why and what to do."""
