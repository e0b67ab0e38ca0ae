"""Privault: a personal-data platform that makes a service's privacy policy true in code."""

__version__ = "0.1.0"
