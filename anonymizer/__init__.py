"""The anonymizer: pseudonymize identifiers, coarsen and scrub, so nothing raw reaches storage."""
