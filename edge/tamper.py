"""Is someone tampering with the camera? Three cheap measures on a small grey image:
spread of grey levels (a covered lens is nearly uniform), sharpness (variance of the Laplacian:
a defocused or sprayed lens loses edges), and how much of the view still looks as in a reference
view (a camera turned away sees a different layout). Pure functions of images; thresholds come
from the camera's ``tamper`` configuration.

The view measure is a share of grid cells, not one correlation over the whole image. On a
low-texture scene (empty asphalt) a whole-image edge correlation is decided by whatever edges there
are: one passing car took it from 0.9 to 0.03 on ``parking_lot_traffic.mp4``, which is how fixed
cameras over a parking lot raised ``camera_tampered``. A passing car changes a minority of the
cells; a turned camera changes nearly all of them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from broker.cameraconfig import TamperConfig

_SIZE = (160, 90)
_GRID = (16, 9)  # cells of 10x10 pixels of the small image
# A cell matches when its brightness relative to the image's median (auto exposure scales the
# whole image when a white car drives in) and its edge energy both agree with the reference's.
_BRIGHTNESS_TOLERANCE = 0.2  # |log ratio|: about +-22 %
_EDGE_TOLERANCE = float(np.log(2.5))
# Edge energy of flat asphalt and codec noise: below it a cell's energy ratio is noise, so both
# sides get this added before they are compared.
_EDGE_FLOOR = 3.0


@dataclass(frozen=True, slots=True)
class TamperMeasures:
    std: float
    sharpness_ratio: float | None  # sharpness relative to the reference view; None without one
    similarity: float | None  # share of the view's cells that match the reference; None without one


def sharpness(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def small_grey(frame_bgr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
    return cv2.resize(grey, _SIZE, interpolation=cv2.INTER_AREA)


def median_view(greys: list[np.ndarray]) -> np.ndarray:
    """The per-pixel median of several small grey views: what stays put (the scene) without what
    passed through one or two of them (a car), so a reference is never taken of a passing car."""
    return np.median(np.stack(greys), axis=0).astype(np.uint8)


def _cells(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: brightness relative to the median, and edge energy per 100 grey levels of it."""
    g = cv2.GaussianBlur(grey.astype(np.float32), (3, 3), 0)
    median = max(float(np.median(g)), 1.0)
    magnitude = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    brightness = cv2.resize(g, _GRID, interpolation=cv2.INTER_AREA) / median
    edges = cv2.resize(magnitude, _GRID, interpolation=cv2.INTER_AREA) / median * 100.0
    return np.maximum(brightness, 1e-3), edges


def view_match(grey: np.ndarray, reference_grey: np.ndarray) -> float:
    """The share (0..1) of the view's cells whose brightness and edge energy match the reference."""
    brightness, edges = _cells(grey)
    ref_brightness, ref_edges = _cells(reference_grey)
    same_light = np.abs(np.log(brightness / ref_brightness)) < _BRIGHTNESS_TOLERANCE
    same_edges = np.abs(np.log((edges + _EDGE_FLOOR) / (ref_edges + _EDGE_FLOOR))) < _EDGE_TOLERANCE
    return float(np.mean(same_light & same_edges))


def measure(frame_bgr: np.ndarray, reference_grey: np.ndarray | None = None) -> TamperMeasures:
    grey = small_grey(frame_bgr)
    if reference_grey is None:
        return TamperMeasures(float(grey.std()), None, None)
    # Sharpness depends on the scene, so it is judged against the same camera's reference view.
    ratio = sharpness(grey) / max(sharpness(reference_grey), 1e-6)
    return TamperMeasures(float(grey.std()), ratio, view_match(grey, reference_grey))


def tamper_cause(m: TamperMeasures, cfg: TamperConfig) -> str | None:
    """Why this frame looks tampered with, or None when it looks normal."""
    if m.std < cfg.covered_max_std:
        return f"lens covered (grey-level spread {m.std:.1f} < {cfg.covered_max_std})"
    if m.sharpness_ratio is not None and m.sharpness_ratio < cfg.min_sharpness_ratio:
        return f"image defocused (sharpness {m.sharpness_ratio:.0%} of the reference view's)"
    if m.similarity is not None and m.similarity < cfg.min_similarity:
        return (f"view turned away from its reference ({m.similarity:.0%} of the view matches it, "
                f"< {cfg.min_similarity:.0%})")
    return None
