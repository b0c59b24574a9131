"""Subcommands of `mlgov`, one module per group; each exposes `register(subparsers)`."""
