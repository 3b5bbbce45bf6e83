"""What both viewers share besides the store's queries: time windows, byte units, labels.

Pure functions only; curses and Dash stay in their own packages.
"""
