"""Codec adapters (never name a package ``codecs``: it would shadow the standard library)."""
