"""Staff, roles, purpose checks and the hash-chained access log."""
