"""The exit statuses of every `netwarden` command, defined once (sysexits.h).

Service managers and scripts tell failures apart by them: the systemd units list
EXIT_CONFIG_ERROR in RestartPreventExitStatus, so a typo in the config stops a service once
instead of crash-looping it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 64          # EX_USAGE: a bad flag or argument
EXIT_DATAERR = 65        # EX_DATAERR: the argument names nothing in the store
EXIT_NOUSER = 67         # EX_NOUSER: --user names no such user
EXIT_UNAVAILABLE = 69    # EX_UNAVAILABLE: kernel support, a socket or a state file missing
EXIT_IOERR = 74          # EX_IOERR: the store cannot be opened or read
EXIT_NOPERM = 77         # EX_NOPERM: not privileged, or refusing to run privileged
EXIT_CONFIG_ERROR = 78   # EX_CONFIG: the configuration is wrong
