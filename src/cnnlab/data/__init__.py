"""Data sets: what users have on disk, decoded once, plus the embedded default (digits)."""
