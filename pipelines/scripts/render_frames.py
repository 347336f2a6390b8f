"""Writes N PNG frames of an animated gradient into $SWITCHBOARD_ARTIFACTS, reporting
each through the stage output protocol. Standard library only (zlib + struct)."""

import math
import os
import struct
import sys
import time
import zlib

WIDTH, HEIGHT = 160, 90


def png(width, height, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(row) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def frame(t):
    rows = []
    for y in range(HEIGHT):
        row = []
        for x in range(WIDTH):
            r = int(127 + 127 * math.sin(x / 18 + t))
            g = int(127 + 127 * math.sin(y / 12 + t * 1.3))
            b = int(127 + 127 * math.sin((x + y) / 25 - t))
            row += (r, g, b)
        rows.append(row)
    return rows


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    out = os.environ["SWITCHBOARD_ARTIFACTS"]
    for i in range(count):
        name = f"frame-{i:03d}.png"
        with open(os.path.join(out, name), "wb") as f:
            f.write(png(WIDTH, HEIGHT, frame(i * 0.5)))
        print(f"rendered {name}")
        print(f"::artifact {name} image")
        print(f"::progress {i + 1}/{count} frame {i + 1}")
        sys.stdout.flush()
        time.sleep(0.2)


if __name__ == "__main__":
    main()
