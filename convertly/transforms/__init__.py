"""The transform engine: one parameter table for every resize, crop, colour and timing
operation, shared by the media tools, job options and image delivery.

    table.py    Param: one transform parameter (name, aliases, kind, range, default, help)
"""
