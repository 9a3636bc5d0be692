"""Benchmarks: every stage measured against its limit in the same run (`mayak bench`)."""
