"""The remote sink: an unprivileged process shipping the store to PostgreSQL or MariaDB."""
