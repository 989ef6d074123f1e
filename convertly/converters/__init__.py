"""Converters, one module per media family, looked up through the registry."""
