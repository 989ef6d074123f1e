"""Convertly: a self-hosted media conversion service, wire-compatible with Convertly's API."""

__version__ = "0.1.0"
