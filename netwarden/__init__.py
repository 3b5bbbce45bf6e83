"""netwarden: a host network monitor for Linux."""
