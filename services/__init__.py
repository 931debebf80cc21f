"""seqhub's services. `python -m services` runs all five in one process (the embedded mode)."""
