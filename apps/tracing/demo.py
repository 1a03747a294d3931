"""The stage tree of generated bench/demo spans (no Django imports: bench reads it)."""

# stage, parent, median ms, sigma (lognormal), error share
STAGES = [
    ("1_SCRAPE", "", 400.0, 0.6, 0.002),
    ("1.1_RATE_LIMIT", "1_SCRAPE", 0.8, 0.4, 0.0),
    ("2_FETCH", "1_SCRAPE", 250.0, 0.7, 0.01),
    ("2.1_L1_CACHE_LOOKUP", "2_FETCH", 0.05, 0.5, 0.0),
    ("2.2_L2_CACHE_LOOKUP", "2_FETCH", 1.2, 0.5, 0.001),
    ("2.3_PROXY_LEASE", "2_FETCH", 4.0, 0.6, 0.005),
    ("2.4_HTTP_GET", "2_FETCH", 220.0, 0.8, 0.03),
    ("3_PARSE", "1_SCRAPE", 35.0, 0.5, 0.004),
    ("3.1_EXTRACT", "3_PARSE", 20.0, 0.5, 0.0),
    ("4_WRITE", "1_SCRAPE", 15.0, 0.9, 0.002),
    ("4.1_VALIDATE", "4_WRITE", 2.0, 0.4, 0.01),
    ("4.2_UPSERT", "4_WRITE", 10.0, 1.0, 0.002),
]
