"""URL-scheme routed transfers (stat / get / put / list): one module per scheme, a router on top."""
