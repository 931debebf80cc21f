"""seqhub beacon service: GA4GH Beacon v1 on its own variant index, access tiers, passports and a beacon network."""
