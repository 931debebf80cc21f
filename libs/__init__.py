"""Libraries shared by seqhub's services (common) and its clients (sdk)."""
