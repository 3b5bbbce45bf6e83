"""The one table of differences between SQLite, PostgreSQL and MariaDB/MySQL.

Statements are written once; what differs between servers (column types, the placeholder,
how an insert is made idempotent, how a name is quoted) is looked up here.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class DialectName(enum.Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    MARIADB = "mariadb"


@dataclass(frozen=True)
class Dialect:
    name: DialectName
    placeholder: str
    types: dict[str, str]          # SQLite's declared type -> this server's
    key_text: str                  # a text column inside a primary key
    quote: str                     # identifier quote character
    insert_ignore: str             # the idempotent insert; {table} {columns} {rows}

    def column_type(self, sqlite_type: str) -> str:
        return self.types[sqlite_type.upper()]

    def ident(self, name: str) -> str:
        return f"{self.quote}{name}{self.quote}"

    def idempotent_insert(self, table: str, columns: Sequence[str], rows: int,
                          key: Sequence[str]) -> str:
        """One statement inserting ``rows`` rows; a row whose ``key`` exists is skipped."""
        row = "(" + ", ".join([self.placeholder] * len(columns)) + ")"
        return self.insert_ignore.format(
            table=self.ident(table), columns=", ".join(self.ident(c) for c in columns),
            rows=", ".join([row] * rows), key=", ".join(self.ident(k) for k in key))


SQLITE = Dialect(DialectName.SQLITE, "?", {"INTEGER": "INTEGER", "REAL": "REAL", "TEXT": "TEXT"},
                 "TEXT", '"',
                 "INSERT INTO {table} ({columns}) VALUES {rows} ON CONFLICT ({key}) DO NOTHING")

# ON CONFLICT DO NOTHING needs INSERT only: no UPDATE privilege, so a host role can add rows
# and never change one. No conflict target: naming the key columns would need SELECT on
# them. The primary key is each shipped table's only unique index, so it is the arbiter.
POSTGRESQL = Dialect(DialectName.POSTGRESQL, "%s",
                     {"INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION", "TEXT": "TEXT"},
                     "TEXT", '"',
                     "INSERT INTO {table} ({columns}) VALUES {rows} ON CONFLICT DO NOTHING")

# INSERT IGNORE needs only INSERT (ON DUPLICATE KEY UPDATE would need UPDATE). IGNORE also
# turns other errors into warnings: the sink runs in strict mode and treats any warning but a
# duplicate key (1062) as an error.
MARIADB = Dialect(DialectName.MARIADB, "%s",
                  {"INTEGER": "BIGINT", "REAL": "DOUBLE", "TEXT": "LONGTEXT"},
                  "VARCHAR(64)", "`",
                  "INSERT IGNORE INTO {table} ({columns}) VALUES {rows}")

DIALECTS: dict[str, Dialect] = {
    "sqlite": SQLITE, "postgresql": POSTGRESQL, "postgres": POSTGRESQL,
    "mariadb": MARIADB, "mysql": MARIADB,
}


def dialect_named(name: str) -> Dialect:
    try:
        return DIALECTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown SQL dialect {name!r}; one of: postgresql, mariadb, "
                         "mysql") from None
