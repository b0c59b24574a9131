"""The warm runner process: libraries imported once, each command run in a forked child."""
