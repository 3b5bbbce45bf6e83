"""The terminal viewer: `netwarden tui`, a curses browser over the store."""
