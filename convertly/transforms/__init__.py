"""The transform engine: one parameter table for every resize, crop, colour and timing
operation, shared by the media tools, job options and image delivery.

    table.py    Param: one transform parameter (name, aliases, kind, range, default, help),
                and the rows: image (size, crop, orientation, edges, filters, output),
                media (clip window, fps, codec, bitrates)
    values.py   Length, Colour, Point: the typed values of the kinds beyond numbers
    parse.py    parse(raw, params): the one validator (canonical names, typed values,
                ranges, defaults; unknown names refused)
    media.py    ffmpeg arguments from parsed values: clip window, scale/fit, encoders
    image.py    a parsed image transform applied to a libvips image, in one order, sized
                while decoding where it can
"""
