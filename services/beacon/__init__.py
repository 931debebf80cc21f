"""seqhub beacon service: GA4GH Beacon v1 on its own variant index, with access tiers, passports and a beacon network."""
