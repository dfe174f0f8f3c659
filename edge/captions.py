"""Caption text on evidence snapshots, drawn with a CJK-capable TrueType font through Pillow.

Zone and camera names are usually Chinese (消防通道 东门). OpenCV's own text drawing depends on the
release (4.x and 5.1 draw "?" for every Chinese character, 5.0 drew them), so captions never use it:
Pillow renders them with a font found on the system (Debian's fonts-noto-cjk, which the set-up and
the edge image install) or named by ``SHARPEYES_CAPTION_FONT``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

FONT_ENV = "SHARPEYES_CAPTION_FONT"
# Tried in order; the first that draws Chinese wins. Noto Sans CJK is what scripts/ensure-system.sh
# and the Dockerfile install; the others are what Debian, Ubuntu and Alpine users often have.
KNOWN_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
# A character every CJK font has and no Latin font does: how a candidate font is checked.
PROBE = "消"
# A TrueType collection holds several faces (Noto: JP, KR, SC, TC, HK); the Simplified Chinese face
# draws the forms residents and grid workers read.
PREFERRED_FACE = ("SC", "Simplified", "GB")
MISSING_FONT_FIX = (
    "install a CJK font (Debian/Ubuntu: apt-get install fonts-noto-cjk) or set "
    f"{FONT_ENV} to a .ttf/.ttc/.otf file that has Chinese glyphs"
)


class CaptionFontError(RuntimeError):
    """The font named by SHARPEYES_CAPTION_FONT cannot draw Chinese."""


@dataclass(frozen=True, slots=True)
class CaptionFont:
    """A font file and face index that draws Chinese, or the fallback (``path`` None)."""

    path: str | None
    index: int = 0

    def at(self, size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return _load(self.path, self.index, size_px)


@cache
def _load(path: str | None, index: int, size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size_px)
    return ImageFont.truetype(path, size_px, index=index)


def draws_chinese(path: str, index: int = 0) -> bool:
    """True when the face has a real glyph for a common Chinese character (not the empty box)."""
    try:
        font = ImageFont.truetype(path, 32, index=index)
    except OSError:
        return False
    probe = _ink(font, PROBE)
    return bool(probe.any()) and not np.array_equal(probe, _ink(font, "\ue000"))  # U+E000: never a glyph


def _ink(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    image = Image.new("L", (48, 48))
    ImageDraw.Draw(image).text((4, 4), text, font=font, fill=255)
    return np.asarray(image) > 0


def _faces(path: str) -> list[tuple[int, str]]:
    """(index, style name) of every face in the file; a plain .ttf has one."""
    faces = []
    for index in range(16):
        try:
            family, style = ImageFont.truetype(path, 12, index=index).getname()
        except OSError:
            break
        faces.append((index, f"{family} {style}"))
    return faces


def _best_face(path: str) -> int | None:
    faces = [(i, name) for i, name in _faces(path) if draws_chinese(path, i)]
    if not faces:
        return None
    preferred = [i for i, name in faces if any(tag in name for tag in PREFERRED_FACE)]
    return (preferred or [faces[0][0]])[0]


def _fontconfig_candidates() -> list[str]:
    """What fontconfig offers for Chinese, where it is installed (a system without it still works)."""
    if shutil.which("fc-match") is None:
        return []
    try:
        out = subprocess.run(["fc-match", "-s", "-f", "%{file}\n", ":lang=zh-cn"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.splitlines()[:20] if line]


@cache
def caption_font() -> CaptionFont:
    """The font captions are drawn with, found once per process.

    A font named by SHARPEYES_CAPTION_FONT that cannot draw Chinese is an error (the operator asked
    for it). Without one, the known locations and fontconfig are searched; when nothing draws
    Chinese, captions fall back to Pillow's built-in font (Latin only) with one warning that says how
    to fix it, and the edge goes on filing evidence.
    """
    named = os.environ.get(FONT_ENV)
    if named:
        if not Path(named).is_file():
            raise CaptionFontError(f"{FONT_ENV}={named}: no such file; {MISSING_FONT_FIX}")
        face = _best_face(named)
        if face is None:
            raise CaptionFontError(f"{FONT_ENV}={named}: this font has no Chinese glyphs; {MISSING_FONT_FIX}")
        return CaptionFont(named, face)
    seen: set[str] = set()
    for path in [*KNOWN_FONTS, *_fontconfig_candidates()]:
        if path in seen or not Path(path).is_file():
            continue
        seen.add(path)
        face = _best_face(path)
        if face is not None:
            log.debug("evidence captions: %s (face %d)", path, face)
            return CaptionFont(path, face)
    log.warning("evidence captions: no font with Chinese glyphs found, so Chinese zone and camera names "
                "will show as empty boxes on snapshots; %s", MISSING_FONT_FIX)
    return CaptionFont(None)


def caption_size_px(width: int, height: int) -> int:
    """Caption text height for a frame: 24 px at 720p, never under 14 px (legible on a phone)."""
    return max(14, round(min(width, height) / 30))


def draw_caption(image_bgr: np.ndarray, text: str, corner: tuple[int, int], size_px: int,
                 background: tuple[int, int, int], foreground: tuple[int, int, int] = (255, 255, 255)) -> None:
    """Draw ``text`` in place on a filled box whose bottom-left is ``corner`` (BGR colours).

    The box is pushed down or left to stay inside the frame; only the box's pixels go through Pillow.
    """
    if not text:
        return
    font = caption_font().at(size_px)
    left, top, right, bottom = font.getbbox(text)
    pad = max(2, size_px // 8)
    box_w, box_h = int(right - left) + 2 * pad, int(bottom - min(top, 0)) + 2 * pad
    h, w = image_bgr.shape[:2]
    box_w, box_h = min(box_w, w), min(box_h, h)
    x = min(max(0, corner[0]), w - box_w)
    y = min(max(0, corner[1] - box_h), h - box_h)
    region = np.empty((box_h, box_w, 3), dtype=np.uint8)
    region[:] = background[::-1]  # BGR -> RGB for Pillow
    canvas = Image.fromarray(region)
    ImageDraw.Draw(canvas).text((pad - left, pad - min(top, 0)), text, font=font, fill=foreground[::-1])
    image_bgr[y:y + box_h, x:x + box_w] = np.asarray(canvas)[:, :, ::-1]
