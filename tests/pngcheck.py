"""Just enough PNG to judge a screenshot: decode (8-bit RGB/RGBA, non-interlaced, as Chromium
writes them) with zlib and struct, then measure where the ink is."""
import shutil
import struct
import subprocess
import zlib

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--force-device-scale-factor=1"]


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is needed (Debian package 'chromium'; .ci/run installs it)"
    return path


def screenshot(html_path, png_path, width, height, profile):
    """Render ``html_path`` in headless Chromium at ``width`` x ``height`` CSS pixels."""
    r = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                        f"--screenshot={png_path}", f"--window-size={width},{height}",
                        html_path.as_uri()], capture_output=True, text=True, timeout=120)
    assert png_path.exists(), r.stderr[-2000:]
    return Image.read(png_path)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


class Image:
    def __init__(self, width, height, rows):
        self.width, self.height, self.rows = width, height, rows     # rows of (r, g, b)

    @classmethod
    def read(cls, path):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        pos, idat, header = 8, b"", None
        while pos < len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + length]
            if kind == b"IHDR":
                header = struct.unpack(">IIBBBBB", body)
            elif kind == b"IDAT":
                idat += body
            pos += 12 + length
        width, height, depth, colour, _, _, interlace = header
        assert depth == 8 and colour in (2, 6) and interlace == 0, header
        channels = 3 if colour == 2 else 4
        raw = zlib.decompress(idat)
        stride = width * channels
        rows, previous = [], bytearray(stride)
        for y in range(height):
            start = y * (stride + 1)
            kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                up = previous[i]
                corner = previous[i - channels] if i >= channels else 0
                if kind == 1:
                    line[i] = (line[i] + left) & 0xFF
                elif kind == 2:
                    line[i] = (line[i] + up) & 0xFF
                elif kind == 3:
                    line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
                elif kind == 4:
                    line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
            rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
            previous = line
        return cls(width, height, rows)

    # -- measures ----------------------------------------------------------------------------

    @staticmethod
    def is_ink(pixel):
        """Text and strong colour: dark enough to read on a light page."""
        r, g, b = pixel
        return 0.299 * r + 0.587 * g + 0.114 * b < 140

    def ink_share(self):
        ink = sum(1 for row in self.rows for p in row if self.is_ink(p))
        return ink / (self.width * self.height)

    def text_lines(self):
        """Bands of rows holding ink, separated by rows with none: lines of text (and rules)."""
        bands, inside = 0, False
        for row in self.rows:
            has_ink = any(self.is_ink(p) for p in row)
            if has_ink and not inside:
                bands += 1
            inside = has_ink
        return bands

    def ink_columns(self):
        """(first, last) x holding ink."""
        xs = [x for row in self.rows for x, p in enumerate(row) if self.is_ink(p)]
        return min(xs), max(xs)

    def count(self, colour, tolerance=24):
        """Pixels within ``tolerance`` of ``colour`` ('#rrggbb') on every channel."""
        target = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return sum(1 for row in self.rows for p in row
                   if all(abs(a - b) <= tolerance for a, b in zip(p, target)))

    def top(self, height):
        """The first ``height`` rows (where a digest's badge row sits)."""
        return Image(self.width, min(height, self.height), self.rows[:height])

    def distinct_colours(self):
        return len({p for row in self.rows for p in row})
