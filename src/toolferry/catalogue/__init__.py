"""Catalogue environments: register, versions, search, matching."""
