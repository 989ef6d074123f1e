"""Video streams."""
