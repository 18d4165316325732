"""pil_letterbox.py: the Pillow side of vitrine's preprocessing, shared by the Python peers in bench/.

letterbox(path, size): decode (JPEG DCT scaling allowed, like vitrine's min_long), fit into a
size x size white square keeping the aspect ratio, antialiased (Pillow's BILINEAR reduce = vitrine's
tent filter).
"""
from PIL import Image


def letterbox(path, size=224):
    im = Image.open(path)
    im.draft("RGB", (size, size))
    im = im.convert("RGB")
    w, h = im.size
    s = size / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(im, ((size - nw) // 2, (size - nh) // 2))
    return canvas
