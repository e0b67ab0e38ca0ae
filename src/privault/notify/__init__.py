"""Mail templates, the outbox and sending."""
