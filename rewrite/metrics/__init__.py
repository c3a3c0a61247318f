"""Measuring edits: where a rule fires, and how much images change inside and outside."""
