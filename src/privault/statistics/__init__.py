"""Statistics for third parties that identify no one (P3.10)."""
