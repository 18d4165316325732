"""vtproc.py: what the server-side checks and benchmarks share: a process's memory and open files
from /proc, and the small-file-big-image PNG used against photo search."""
import os
import struct
import zlib


def status_kb(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM...); 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    """Number of open file descriptors of the process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def reset_peak(pid):
    """Resets the process's VmHWM (Linux: 5 > clear_refs); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def png_zeros(w, h):
    """A grayscale PNG of w x h zero pixels, zlib-compressed row by row (small file, big image)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    z = zlib.compressobj(9)
    row = bytes(w + 1)  # filter byte 0 + w zero pixels
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
