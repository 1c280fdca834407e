"""Exchange protocol knowledge, one folder per venue with the same file names in each (pure)."""
