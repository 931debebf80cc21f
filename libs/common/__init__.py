"""Server code every seqhub service shares: config, events, bus, db, web, auth, files, metrics, logs.

Nothing here knows about one service's domain; services compose these pieces in their `create_app`.
"""
