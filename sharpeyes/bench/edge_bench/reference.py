"""The machine's speed just before a run: one fixed piece of work, timed in CPU.

These boxes are shared; in one session the same single-thread yolov8n inference took 1.5-3x longer
at one hour than at another, and every figure of a run moves with it. Each run records this
reference beside its figures, so that runs (and sessions) can be told apart by the speed of the
machine they ran on, not only by what changed in the code.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

REFERENCE_MODEL = "yolov8n"
REFERENCE_CALLS = 7


def reference_inference_ms(calls: int = REFERENCE_CALLS) -> float:
    """Median CPU ms of one yolov8n inference at 640x640 on one onnxruntime thread (after two
    warm-up calls), in this process."""
    import onnxruntime as ort

    from models.registry import resolve_model

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(resolve_model(REFERENCE_MODEL).path), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    tensor = np.full((1, 3, 640, 640), 0.5, np.float32)
    for _ in range(2):
        session.run(None, {name: tensor})
    spent = []
    for _ in range(calls):
        started = time.thread_time()
        session.run(None, {name: tensor})
        spent.append(time.thread_time() - started)
    return statistics.median(spent) * 1000
