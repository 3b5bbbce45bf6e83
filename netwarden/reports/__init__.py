"""`netwarden report`: a day's, week's or month's traffic, new programs and devices and the
sensor's health, as Markdown or a self-contained HTML page (shaping: netwarden/view/report)."""
