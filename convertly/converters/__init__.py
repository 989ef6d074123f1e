"""Converters: one source file in, one output file out, inside a per-task scratch directory.

    base.py       the Converter protocol, the Limits it enforces, the worker Queues
    builtin.py    default_registry(): every built-in family registered
    registry.py   (source kind, target format) -> converter and queue; `plan` settles the
                  target format once for every converter
    pixels.py     the pixel budget (CONVERTLY_MAX_PIXELS): one check, one message
    process.py    the one way to run an external program (argv, timeout, process group)
    resize.py     resize presets -> output geometry (pure arithmetic)

    image/        raster images through libvips: ImageConverter               (image queue)
    vector/       SVG and PDF: VectorConverter, PdfConverter, vtracer         (image queue)
    media/        audio and video through ffmpeg: MediaConverter              (media queue)
    archive/      zip tar 7z rar gz bz2 xz: ArchiveConverter     (archive queue; media for
                  audio and video)

Each family's `__init__` lists its modules and exposes its converter and `register`;
`builtin.default_registry()` registers them all. A new converter implements `base.Converter`
(including the queue of each pair) and registers its pairs like the built-in ones.
"""
