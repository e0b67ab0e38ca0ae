"""The conference-call service: accounts, rooms, profiles."""
