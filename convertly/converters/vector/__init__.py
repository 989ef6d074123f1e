"""Vectors and documents: SVG and PDF in and out, rasters traced to SVG.

converter.py    VectorConverter: SVG drawn to rasters and PDF, SVG minified, rasters traced
trace.py        the tracing steps: the image shaped for vtracer (photo, flat graphic or mono)
trace_child.py  one vtracer run in a process of its own (a timeout can kill it)
svgsafe.py      an SVG rewritten so that nothing outside it is ever read
pdf.py          PdfConverter: images to PDF, PDF pages to images and SVG, PDF compression

The two converters lean on each other (a PDF page is traced to SVG, an SVG drawn into a PDF),
which is why they share this package; both draw rasters through the image family.
"""

from convertly.converters.registry import Registry
from convertly.converters.vector import converter, pdf
from convertly.converters.vector.converter import SVG_TARGETS, VectorConverter
from convertly.converters.vector.pdf import PDF_TARGETS, PdfConverter

__all__ = ["PDF_TARGETS", "SVG_TARGETS", "PdfConverter", "VectorConverter", "register"]


def register(registry: Registry) -> None:
    """Both converters: SVG's pairs first, then PDF's."""
    converter.register(registry)
    pdf.register(registry)
