"""The PyTorch base network for fine-tuning, rebuilt from the registered (sha256-checked) ONNX.

Ultralytics' published ``yolov8n.pt`` cannot be brought into this project's machines: the only
public copies within reach are over the 4 MiB that the code store keeps (docs/models.md). The
registered ``yolov8n.onnx`` is the same network with its batch-norms folded into the convolutions,
so Ultralytics' YOLOv8 graph is built from its own ``yolov8n.yaml`` and every convolution takes
the exported weight; the batch-norm it folded into becomes an identity norm carrying the bias.
:func:`rebuild` checks the result against onnxruntime on the same input before it is used.

A hazard class the base lacks (``ebike``) is added as one more output of the class head. The
head's hidden width follows the class count in YOLOv8 (``max(c, min(nc, 100))``), so the new
channels start at zero (they add nothing) and the new class's output row starts as a copy of its
nearest COCO class (``motorcycle``): training starts from "e-bike = scooter-like two-wheeler".

Needs torch and ultralytics (``make bench-deps``); the edge never imports this module.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

# Where a new class's head row is copied from (its closest COCO class).
SEED_CLASS = {"ebike": "motorcycle"}
ARCHITECTURES = {"yolov8n": "yolov8n.yaml", "yolov8s": "yolov8s.yaml"}
MAX_DEVIATION = 1e-2  # largest output difference (input pixels / scores) accepted after the rebuild


class RebuildError(ValueError):
    """The ONNX file is not the Ultralytics network this module knows how to rebuild."""


def _module_path(output_name: str, modules: dict[str, Any]) -> str:
    """The PyTorch module a Conv node of the export came from. The exporter's scope names repeat
    a ModuleList's own name (``/model.22/cv2.0/cv2.0.0/conv``), so each scope is matched by the
    shortest suffix that names a child of the path so far."""
    path = ""
    for scope in output_name.strip("/").split("/")[:-1]:
        parts = scope.split(".")
        for start in range(len(parts)):
            candidate = ".".join(p for p in (path, ".".join(parts[start:])) if p)
            if candidate in modules:
                path = candidate
                break
        else:
            raise RebuildError(f"{output_name}: no module of the YOLOv8 graph matches scope {scope!r} under {path!r}")
    return path


def rebuild(onnx_path: Path, base: str, class_names: tuple[str, ...]) -> Any:
    """The Ultralytics DetectionModel whose outputs are the ONNX export's (checked)."""
    import onnx
    import torch
    from onnx import numpy_helper
    from ultralytics.nn.tasks import DetectionModel

    if base not in ARCHITECTURES:
        raise RebuildError(f"base {base!r}: known architectures are {', '.join(ARCHITECTURES)}")
    graph = onnx.load(str(onnx_path)).graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    model = DetectionModel(ARCHITECTURES[base], nc=len(class_names), verbose=False)
    modules = dict(model.named_modules())
    convs = 0
    with torch.no_grad():
        for node in graph.node:
            if node.op_type != "Conv":
                continue
            path = _module_path(node.output[0], modules)
            conv, parent = modules[path], modules[path.rpartition(".")[0]]
            weight = torch.from_numpy(constants[node.input[1]].copy())
            bias = torch.from_numpy(constants[node.input[2]].copy()) if len(node.input) > 2 else None
            if tuple(conv.weight.shape) != tuple(weight.shape):
                raise RebuildError(f"{path}: the export has {tuple(weight.shape)}, {base} has {tuple(conv.weight.shape)}")
            conv.weight.copy_(weight)
            if conv.bias is not None and bias is not None:
                conv.bias.copy_(bias)
            elif hasattr(parent, "bn") and bias is not None:
                norm = parent.bn  # identity: (x - 0) / sqrt(1 - eps + eps) * 1 + bias
                norm.weight.fill_(1.0)
                norm.running_mean.zero_()
                norm.running_var.fill_(1.0 - norm.eps)
                norm.bias.copy_(bias)
            convs += 1
    if convs != sum(1 for m in modules.values() if isinstance(m, torch.nn.Conv2d)):
        raise RebuildError(f"{onnx_path}: {convs} convolutions in the export, a different count in {base}")
    model.names = dict(enumerate(class_names))
    calibrate_norms(model, footage_tensors(limit=16))
    _check_against_onnx(model, onnx_path)
    return model


def calibrate_norms(model: Any, samples: list[np.ndarray]) -> None:
    """Give every identity batch-norm the statistics of real pictures, keeping the eval output.

    The export folded each batch-norm into its convolution, so the rebuilt norms start as
    identities: exact in eval mode, but in training mode a norm divides by the batch's own spread,
    and an identity norm then changes the network's every activation from the first step (the
    fine-tuning started from a different network and forgot the vehicles). With mean m and variance
    v of each convolution's output on real pictures, weight sqrt(v + eps) and bias (b + m) give the
    same eval output (x - m) / sqrt(v + eps) * sqrt(v + eps) + b + m = x + b, and a training batch
    of similar pictures is normalised to about what the base computed."""
    import torch

    norms = {name: m.bn for name, m in model.named_modules() if hasattr(m, "bn") and hasattr(m, "conv")}
    sums: dict[str, list[Any]] = {}

    def hook(name: str) -> Any:
        def record(_module: Any, _inputs: Any, output: Any) -> None:
            flat = output.detach().double().transpose(0, 1).reshape(output.shape[1], -1)
            entry = sums.setdefault(name, [0, torch.zeros(flat.shape[0], dtype=torch.float64),
                                           torch.zeros(flat.shape[0], dtype=torch.float64)])
            entry[0] += flat.shape[1]
            entry[1] += flat.sum(dim=1)
            entry[2] += (flat * flat).sum(dim=1)
        return record

    modules = dict(model.named_modules())
    handles = [modules[name].conv.register_forward_hook(hook(name)) for name in norms]
    model.eval()
    try:
        with torch.no_grad():
            for sample in samples:
                model(torch.from_numpy(sample))
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        for name, norm in norms.items():
            count, total, squares = sums[name]
            mean = total / count
            variance = (squares / count - mean * mean).clamp(min=1e-6)
            bias = norm.bias.detach().double().clone()  # the folded bias b (the norm was an identity)
            norm.running_mean.copy_(mean.float())
            norm.running_var.copy_(variance.float())
            norm.weight.copy_(torch.sqrt(variance + norm.eps).float())
            norm.bias.copy_((bias + mean).float())


def footage_tensors(limit: int = 4) -> list[np.ndarray]:
    """Real pictures from ../shared/media, letterboxed as the edge does (RGB, 0..1, 640x640)."""
    import cv2

    from models.letterbox import letterbox
    from models.registry import PROJECT_ROOT

    media = PROJECT_ROOT.parent / "shared" / "media"
    tensors = []
    for path in sorted(p for p in media.glob("*") if p.suffix.lower() in (".jpg", ".png"))[:limit]:
        image = cv2.imread(str(path))
        if image is None:
            continue
        boxed, _ = letterbox(image, (640, 640), centred=True)
        rgb = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[np.newaxis].astype(np.float32) / 255.0
        tensors.append(np.ascontiguousarray(rgb))
    if not tensors:  # no footage beside the project: a fixed pseudo-random picture still catches a bad rebuild
        tensors.append(np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32))
    return tensors


def deviation_from_onnx(model: Any, onnx_path: Path) -> float:
    """The largest difference between MODEL's and the ONNX export's raw outputs (box pixels and
    class scores) on real footage; within MAX_DEVIATION both give the same detections."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    model.eval()
    worst = 0.0
    for sample in footage_tensors():
        expected = session.run(None, {name: sample})[0]
        with torch.no_grad():
            got = model(torch.from_numpy(sample))[0].float().numpy()
        if got.shape != expected.shape:
            raise RebuildError(f"output {got.shape} where the export gives {expected.shape}")
        worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def _check_against_onnx(model: Any, onnx_path: Path) -> None:
    deviation = deviation_from_onnx(model, onnx_path)
    if deviation > MAX_DEVIATION:
        raise RebuildError(f"{onnx_path}: the rebuilt network differs from the export by {deviation:.4g} (limit {MAX_DEVIATION})")


def add_classes(model: Any, base: str, new_classes: tuple[str, ...]) -> Any:
    """MODEL with NEW_CLASSES appended to its outputs; the old outputs are unchanged (zero-width
    new hidden channels) and each new class starts as a copy of its SEED_CLASS row."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    old_names = [model.names[i] for i in range(len(model.names))]
    names = old_names + [c for c in new_classes if c not in old_names]
    if len(names) == len(old_names):
        return model
    grown: Any = DetectionModel(ARCHITECTURES[base], nc=len(names), verbose=False)
    old_state, new_state = model.state_dict(), grown.state_dict()
    head = f"model.{len(grown.model) - 1}.cv3."
    last = [k for k in new_state if k.startswith(head) and ".2." in k]
    for key, target in new_state.items():
        source = old_state[key]
        if source.shape == target.shape:
            new_state[key] = source
            continue
        fill = torch.ones if key.endswith("running_var") else torch.zeros
        value = fill(target.shape, dtype=target.dtype)
        value[tuple(slice(0, n) for n in source.shape)] = source
        if key in last:  # the class rows of the last convolution: seed each new class
            for index, name in enumerate(names[len(old_names):], start=len(old_names)):
                seed = SEED_CLASS.get(name)
                if seed in old_names:
                    value[index] = value[old_names.index(seed)]
        new_state[key] = value
    grown.load_state_dict(new_state)
    grown.names = dict(enumerate(names))
    return grown


def save_checkpoint(model: Any, path: Path, *, source: str) -> Path:
    """MODEL as an Ultralytics checkpoint that ``YOLO(path)`` loads and trains from."""
    import torch
    import ultralytics

    model.args = {"imgsz": 640}
    torch.save({"model": model, "train_args": {}, "version": ultralytics.__version__,
                "date": dt.datetime(2000, 1, 1).isoformat(), "source": source}, path)
    return path
