"""The learning period and the baseline: the `netwarden baseline` commands."""
