"""seqhub's client side: the Python SDK and the `seqhub` command line."""
