"""Raster images through libvips (Pillow / pillow-heif for HEIF and BMP).

converter.py  ImageConverter: picks the steps, checks the compress options and the pixels
declared.py   the size a header declares, checked against the pixel limit before decoding
load.py       the header and the pixels, oriented and scaled (shrink-on-load)
pillow.py     what libvips cannot read (APNG, AVIF sequences, ...), read with Pillow
colour.py     CMYK to sRGB, with or without an embedded profile
shape.py      colour, depth, crop, padding and alpha as the target wants them
save.py       one encoder per target format
compress.py   a quality that fits a target size; never a file larger than the original
jpeg_markers.py  metadata cut out of a JPEG, the image data copied untouched
jpeg_quality.py  the quality a JPEG was saved at, from its quantisation table

Other families use ImageConverter for what they draw (a video frame, an SVG, a PDF page) and
the header helpers to size a raster before decoding it.
"""

from convertly.converters.image.converter import SOURCES, TARGETS, ImageConverter, register
from convertly.converters.image.load import Header, int_field, read_header

__all__ = ["SOURCES", "TARGETS", "Header", "ImageConverter", "int_field", "read_header",
           "register"]
