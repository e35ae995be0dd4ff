"""`inv build` and what looks at its results: the flow from flags to report, the cache check."""
