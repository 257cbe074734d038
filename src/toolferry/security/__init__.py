"""Identities, bearer tokens and permissions."""
