"""Dashboards: product and marketing views and the aggregate-only research API."""
