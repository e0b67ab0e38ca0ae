"""Consents and proofs: cookie choices, channel consents, unsubscribe, first-party analytics."""
