"""Whole books: reading them, making their chapters and M4B, and the jobs that do it."""
