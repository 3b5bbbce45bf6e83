"""LAN discovery: devices on the local link, their presence over time, new-device alerts.

Each method is a small backend behind one interface (backend.py); a pass (scan.py) runs them
and merges their findings by MAC (inventory.py); the service (service.py) writes passes into
the store. Only the raw-socket parts need CAP_NET_RAW.
"""
