"""seqhub rnaget service: GA4GH RNAget (the 2019 draft routes and the released 1.0.0 routes)
on its own matrix store."""
