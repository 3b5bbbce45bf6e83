"""The notifier: follows the store's events as the desktop user and tells people about them.

``notices`` turns event rows into notices (pure), ``flood`` decides which are shown and folds
bursts into summaries (pure, clock passed in), ``service`` is the process, and ``desktop``,
``http_channels`` and ``mqtt`` deliver. The user's mute list is netwarden.mutes (shared with
the TUI and `netwarden mute`). ``virustotal`` looks up new executables' hashes. Nothing here runs at
import time, and no third-party module is imported before privileges are dropped.
"""
