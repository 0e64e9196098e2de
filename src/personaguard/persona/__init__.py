"""Personas: warm, cold, low-agreeableness and warm-but-firm, defined as data."""
