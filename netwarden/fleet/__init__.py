"""The fleet: many hosts' sinks shipping to one server, watched together."""
