"""All of netwarden's SQL: schema and migrations, the writer, read-only queries."""
