"""Example Json events feed: a Marquee provider plugin."""
