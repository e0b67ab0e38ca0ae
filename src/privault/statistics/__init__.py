"""Statistics releases: aggregates about people, suppressed and noised before they go out."""
