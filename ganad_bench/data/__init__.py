"""Data: canonical file sources, evaluation protocols (the only place labels become 0/1), preprocessing."""
