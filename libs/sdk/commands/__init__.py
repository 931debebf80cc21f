"""Subcommands of the `seqhub` CLI; each module exposes `register(subparsers)`."""
