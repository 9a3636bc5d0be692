"""Mayak: privacy-first analytics for the E-LEGAL portal (CLI, settings, local services)."""
