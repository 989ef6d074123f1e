"""One vtracer run in a process of its own.

    python -P convertly/converters/vector/trace_child.py IN OUT PARAMS

vtracer is native code that a thread cannot interrupt, so the vector converter runs it here,
through `convertly.converters.process.run`, whose timeout kills this process. IN is the image
the converter prepared (a PNG in the task's scratch directory), OUT the SVG to write, PARAMS
vtracer's keyword arguments as a JSON object. Exit status 0 means OUT was written.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(
            "usage: python -P trace_child.py IN.png OUT.svg PARAMS_JSON",
            file=sys.stderr,
        )
        return 2
    src, out, params = argv
    import vtracer  # imported here so that a usage error stays cheap

    try:
        vtracer.convert_image_to_svg_py(src, out, **json.loads(params))
    except BaseException as exc:  # vtracer reports its failures as Rust panics (BaseException)
        print(f"trace failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
