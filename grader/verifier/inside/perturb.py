"""Influence by perturbation: the graph rewritten so that chosen edges get `tensor + noise` from an
extra input, all zero but for the site being measured, run once per measurement. Whether a feature
influences the output is then a fact about what the network computes, whatever its code looks like
(`torch.cat([x, skip * 0])` or `x + 0 * x` carry nothing). Runs inside the verifier.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from topology import Edge

PREFIX = "__verifier_"


def relative_change(changed: np.ndarray, base: np.ndarray) -> float:
    """RMS of the difference over the RMS of the baseline (floored, so a zero output stays finite)."""
    if changed.shape != base.shape:
        return float("inf")
    base64 = base.astype(np.float64)
    diff = float(np.sqrt(np.mean((changed.astype(np.float64) - base64) ** 2)))
    scale = max(float(np.sqrt(np.mean(base64 ** 2))), 1e-6)
    value = diff / scale
    return value if np.isfinite(value) else float("inf")


class Perturbation:
    """A rewritten graph with one noise input per (site, tensor) and the session that runs it."""

    def __init__(self, model: onnx.ModelProto, sites: list[list[Edge]], watch: list[str],
                 values: dict[str, np.ndarray], make_session, seed: int = 0):
        rewritten = onnx.ModelProto()
        rewritten.CopyFrom(model)
        graph = rewritten.graph
        nodes = list(graph.node)
        inserted: dict[int, list[onnx.NodeProto]] = {}
        self.noise: list[tuple[int, str, tuple[int, ...], float]] = []  # (site, input name, shape, scale)
        names: dict[tuple[int, str], str] = {}
        for site, edges in enumerate(sites):
            for node_index, slot in edges:
                original = model.graph.node[node_index].input[slot]
                if original not in values:
                    continue
                key = (site, original)
                if key not in names:
                    names[key] = f"{PREFIX}noise_{len(names)}"
                    value = values[original]
                    scale = float(np.sqrt(np.mean(value.astype(np.float64) ** 2)))
                    self.noise.append((site, names[key], value.shape, scale if scale > 1e-6 else 1.0))
                current = nodes[node_index].input[slot]
                out = f"{PREFIX}perturbed_{sum(len(v) for v in inserted.values())}"
                inserted.setdefault(node_index, []).append(helper.make_node("Add", [current, names[key]], [out]))
                nodes[node_index].input[slot] = out
        ordered = []
        for index, node in enumerate(nodes):
            detached = onnx.NodeProto()
            detached.CopyFrom(node)
            ordered += inserted.get(index, []) + [detached]
        del graph.node[:]
        graph.node.extend(ordered)
        for _, name, shape, _ in self.noise:
            graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        present = {o.name for o in graph.output}
        self.output = model.graph.output[0].name
        self.watch = [w for w in watch if w != self.output]
        for name in self.watch:
            if name not in present:
                graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        self.session = make_session(rewritten, optimize=False)
        self.zeros = {name: np.zeros(shape, np.float32) for _, name, shape, _ in self.noise}
        self.rng = np.random.default_rng(seed)
        self.base: tuple[np.ndarray, dict[str, np.ndarray]] | None = None

    def _run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        values = self.session.run([self.output, *self.watch], feeds)
        return values[0], dict(zip(self.watch, values[1:]))

    def measure(self, input_name: str, probe: np.ndarray, active: set[int],
                watched: tuple[str, ...] = ()) -> tuple[float, dict[str, float]]:
        """Relative change of the output, and of the `watched` tensors, with noise on the `active` sites."""
        feeds = {input_name: probe, **self.zeros}
        if self.base is None:
            self.base = self._run(feeds)
        if not active:
            return 0.0, {}
        for site, name, shape, scale in self.noise:
            if site in active:
                feeds[name] = (scale * self.rng.standard_normal(shape)).astype(np.float32)
        out, values = self._run(feeds)
        base_out, base_values = self.base
        return relative_change(out, base_out), {k: relative_change(values[k], base_values[k]) for k in watched
                                                if k in values}
