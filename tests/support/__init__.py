"""Helpers shared by the test tiers: test networks, traffic generators, a running sensor."""
