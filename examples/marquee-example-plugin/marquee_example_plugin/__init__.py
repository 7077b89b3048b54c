"""An example third-party Marquee provider plugin."""
