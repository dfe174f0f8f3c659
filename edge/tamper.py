"""Is someone tampering with the camera? Three cheap measures on a small grey image:
spread of grey levels (a covered lens is nearly uniform), sharpness (variance of the Laplacian:
a defocused or sprayed lens loses edges), and similarity of the edge map to a reference view
(a camera turned away sees different edges). Pure functions of images; thresholds come from
the camera's ``tamper`` configuration."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from broker.cameraconfig import TamperConfig

_SIZE = (160, 90)


@dataclass(frozen=True, slots=True)
class TamperMeasures:
    std: float
    sharpness_ratio: float | None  # sharpness relative to the reference view; None without one
    similarity: float | None  # None without a reference view


def sharpness(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def small_grey(frame_bgr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
    return cv2.resize(grey, _SIZE, interpolation=cv2.INTER_AREA)


def _edge_signature(grey: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    magnitude = cv2.GaussianBlur(cv2.magnitude(gx, gy), (5, 5), 0).ravel()
    magnitude -= magnitude.mean()
    norm = float(np.linalg.norm(magnitude))
    return magnitude / norm if norm > 0 else magnitude


def measure(frame_bgr: np.ndarray, reference_grey: np.ndarray | None = None) -> TamperMeasures:
    grey = small_grey(frame_bgr)
    if reference_grey is None:
        return TamperMeasures(float(grey.std()), None, None)
    # Sharpness depends on the scene, so it is judged against the same camera's reference view.
    ratio = sharpness(grey) / max(sharpness(reference_grey), 1e-6)
    similarity = float(np.dot(_edge_signature(grey), _edge_signature(reference_grey)))
    return TamperMeasures(float(grey.std()), ratio, similarity)


def tamper_cause(m: TamperMeasures, cfg: TamperConfig) -> str | None:
    """Why this frame looks tampered with, or None when it looks normal."""
    if m.std < cfg.covered_max_std:
        return f"lens covered (grey-level spread {m.std:.1f} < {cfg.covered_max_std})"
    if m.sharpness_ratio is not None and m.sharpness_ratio < cfg.min_sharpness_ratio:
        return f"image defocused (sharpness {m.sharpness_ratio:.0%} of the reference view's)"
    if m.similarity is not None and m.similarity < cfg.min_similarity:
        return f"view turned away from its reference (similarity {m.similarity:.2f} < {cfg.min_similarity})"
    return None
