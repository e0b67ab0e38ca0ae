"""Retention: how long data is kept, and legal holds that keep it longer (P6.2, P6.3)."""
