"""Evidence snapshots carry Chinese zone and camera names as written, not as "?" or empty boxes,
whatever OpenCV release is installed (captions are drawn by Pillow with a CJK font)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge import captions
from edge.evidence import Annotation, annotated_snapshot

KERB = [(0.05, 0.74), (0.95, 0.74), (0.95, 0.90), (0.05, 0.90)]
NAMES = {
    "chinese": "消防通道 东门",
    "english": "Fire lane, east gate",
    "mixed": "东门 fire lane 3号楼",
}
# The frame sizes the edge sees from cameras: sub-stream, 720p main stream, 1080p main stream.
FRAMES = [(640, 360), (1280, 720), (1920, 1080)]


def _decode(blob) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(blob.data, np.uint8), cv2.IMREAD_COLOR)


def _title_band(frame: np.ndarray, title: str) -> np.ndarray:
    h, w = frame.shape[:2]
    band = 3 * captions.caption_size_px(w, h)
    return _decode(annotated_snapshot(frame, KERB, [], title=title))[:band].astype(int)


def _question_marks(text: str) -> str:
    """What OpenCV's Hershey fonts (and OpenCV 5.1) draw for the same text."""
    marks = "".join(c if c.isascii() else "?" for c in text)
    return "?" * len(text) if marks == text else marks


def _no_glyphs(text: str) -> str:
    """What a font without Chinese draws: the empty box (.notdef), as for U+E000."""
    return "".join(c if c.isascii() else "\ue000" for c in text)


def test_the_set_up_installed_a_font_that_draws_chinese() -> None:
    font = captions.caption_font()
    assert font.path is not None, f"no CJK font on this machine: {captions.MISSING_FONT_FIX}"
    assert captions.draws_chinese(font.path, font.index)


@pytest.mark.parametrize("size", FRAMES, ids=[f"{w}x{h}" for w, h in FRAMES])
@pytest.mark.parametrize("kind", NAMES)
def test_names_are_drawn_as_glyphs_not_placeholders(street_frame, size, kind) -> None:
    import cv2

    frame = cv2.resize(street_frame, size)
    name = NAMES[kind]
    drawn = _title_band(frame, name)
    assert np.abs(drawn - _title_band(frame, "")).mean() > 2, "the title is missing"
    assert np.abs(drawn - _title_band(frame, _question_marks(name))).mean() > 1, "drawn as question marks"
    if kind != "english":
        assert np.abs(drawn - _title_band(frame, _no_glyphs(name))).mean() > 1, "drawn as empty boxes"


def test_different_chinese_names_look_different(street_frame) -> None:
    # Two names of the same length differ on the snapshot: a reviewer can tell the zones apart.
    assert np.abs(_title_band(street_frame, "东门消防通道") - _title_band(street_frame, "西门消防通道")).mean() > 0.2


def test_captions_stay_inside_the_frame(street_frame) -> None:
    h, w = street_frame.shape[:2]
    blob = annotated_snapshot(street_frame, KERB, [Annotation((0.0, 0.0, 0.2, 0.2), "car 0.91 车辆")], title="消防通道")
    image = _decode(blob)
    assert image.shape[:2] == (h, w)
    # The caption of a box touching the top edge is pushed down into the picture, not cut off.
    red = (image[:, :, 2] > 200) & (image[:, :, 1] < 60) & (image[:, :, 0] < 60)
    assert red[: h // 10, : w // 4].any()
    # A caption wider than the space left of the right edge moves left instead of being cut.
    right = annotated_snapshot(street_frame, KERB, [Annotation((0.97, 0.5, 1.0, 0.6), "电动车 e-bike 0.88")])
    red = _decode(right)
    red_right = (red[:, :, 2] > 200) & (red[:, :, 1] < 60) & (red[:, :, 0] < 60)
    assert red_right[h // 3: h // 2, w - w // 5: w - w // 30].any()


def test_a_named_font_without_chinese_is_refused_with_the_fix(monkeypatch, tmp_path: Path) -> None:
    latin = next((p for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",) if Path(p).is_file()), None)
    if latin is None:
        latin_path = tmp_path / "missing.ttf"  # a path that is not a font file at all
        latin_path.write_bytes(b"not a font")
        latin = str(latin_path)
    monkeypatch.setenv(captions.FONT_ENV, latin)
    captions.caption_font.cache_clear()
    try:
        with pytest.raises(captions.CaptionFontError, match="fonts-noto-cjk"):
            captions.caption_font()
        monkeypatch.setenv(captions.FONT_ENV, str(tmp_path / "nowhere.ttc"))
        with pytest.raises(captions.CaptionFontError, match="no such file"):
            captions.caption_font()
    finally:
        monkeypatch.delenv(captions.FONT_ENV)
        captions.caption_font.cache_clear()
