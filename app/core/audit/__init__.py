"""The audit trail: a tamper-evident local journal, and an outbox that delivers it upstream."""
