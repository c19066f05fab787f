"""The structure part of a verifier job: every tensor's real shape on the probe, the graph's joins
and residual adds, and how much each one's features influence the output. Runs inside the verifier.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
from onnx import helper

from perturb import Perturbation
from topology import AnalysisError, Layout, analyse


def _without_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose large initializers are graph inputs of the same type and shape: what shape
    inference needs, without copying every weight through it."""
    light = onnx.ModelProto()
    light.CopyFrom(model)
    kept = []
    for tensor in light.graph.initializer:
        if len(tensor.dims) and int(np.prod(tensor.dims)) > 1024:
            light.graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
        else:
            kept.append(tensor)
    del light.graph.initializer[:]
    light.graph.initializer.extend(kept)
    return light


def _float_tensors(model: onnx.ModelProto) -> list[str]:
    """Names of the float tensors nodes produce, from onnx's shape inference."""
    inferred = onnx.shape_inference.infer_shapes(_without_weights(model))
    types = {vi.name: vi.type.tensor_type.elem_type for vi in
             list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    return [o for node in model.graph.node for o in node.output if o and types.get(o) == onnx.TensorProto.FLOAT]


def _exposed(runner):
    """A session over the graph with every float tensor exposed as an output."""
    model = runner.light
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    for name in _float_tensors(model):
        if name not in present:
            exposed.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            present.add(name)
    return runner.make(exposed, optimize=False)


def _all_values(session, runner, probe: np.ndarray) -> dict[str, np.ndarray]:
    """Every float tensor's value on `probe`."""
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(names, {runner.input: probe})))
    values[runner.input] = probe
    return {k: np.asarray(v) for k, v in values.items() if isinstance(v, np.ndarray)}


def _measure(layout: Layout, topo, model, runner, values, probe, threshold: float, seed: int) -> dict:
    """Influence on the output of each join's encoder feature, next to that of the join's own output
    (the yardstick); of each residual add's sides, its convolutions together and each convolution of
    its 3×3 chain alone (the larger side is their yardstick); and of the stem's output, whole, next to
    that of the input (the encoder must carry the signal: no path that skips it may carry more).
    Measured on `probe`, which may be smaller than the one the layout was read from: sites are tensors."""
    sites, watch = [], []

    def site(edges) -> int:
        sites.append(list(edges))
        return len(sites) - 1

    def downstream(node: int) -> int:  # every use of the node's output
        return site(topo.consumers.get(topo.nodes[node].output[0], []))

    join_sites = [(site(j.edges), downstream(j.node)) for j in layout.joins]
    residual_sites = []
    for r in layout.residuals:
        sides = [site(s.entries) for s in r.sides]
        convs = [[(topo.nodes[n].output[0], downstream(n)) for n in s.convs] for s in r.sides]
        watch += [name for side in convs for name, _ in side]
        chain = [(topo.nodes[n].output[0], downstream(n)) for n in r.chain]
        residual_sites.append((sides, convs, chain))
    stem_site = downstream(layout.stem_node) if layout.stem_node is not None else None
    input_site = site(topo.consumers.get(runner.input, []))
    gate_sites = [(site(topo.consumers.get(g.gate, [])), downstream(g.node)) for g in layout.gates]
    watch += [g for g in dict.fromkeys(g.gate for g in layout.gates) if g not in watch]
    perturbation = Perturbation(runner.light, sites, watch, values, runner.make, seed)
    measure = functools.partial(perturbation.measure, runner.input, probe)
    measure(set())  # the baseline
    joins = []
    for j, (skip, reference) in zip(layout.joins, join_sites):
        joins.append({"op": j.op, "size": list(j.size), "encoder_size": list(j.encoder_size) if j.encoder_size
                      else None, "channels": j.channels,
                      "influence": _finite(measure({skip})[0]) if j.edges else 0.0,
                      "reference": _finite(measure({reference})[0])})
    residuals = []
    for r, (sides, convs, chain) in zip(layout.residuals, residual_sites):
        side_influence, candidates, carried = [], set(), {}
        for side_site, side_convs in zip(sides, convs):
            out, changed = measure({side_site}, tuple(name for name, _ in side_convs))
            side_influence.append(_finite(out))
            carried.update(changed)
            candidates |= {conv_site for name, conv_site in side_convs if changed.get(name, 0.0) >= threshold}
        residuals.append({"channels": r.channels, "size": list(r.size), "in_size": list(r.in_size),
                          "kind": r.kind, "widths": list(r.widths), "fan_ins": list(r.fan_ins),
                          "stored": list(r.stored),
                          "influence": side_influence,
                          "conv_influence": _finite(measure(candidates)[0]) if candidates else 0.0,
                          "convs": sum(len(c) for c in convs),
                          "chain": [{"carried": carried.get(name, 0.0) >= threshold,
                                     "influence": _finite(measure({conv_site})[0])} for name, conv_site in chain]})
    measured = {"joins": joins, "residual_adds": residuals,
                "stem_influence": _finite(measure({stem_site})[0]) if stem_site is not None else 0.0,
                "input_influence": _finite(measure({input_site})[0])}
    if layout.gates:  # a gate counts when it is learned, changes the output and the input changes it
        _, moved = measure({input_site}, tuple(g.gate for g in layout.gates))
        measured["gates"] = [{"where": g.where, "size": list(g.size), "channels": g.channels, "learned": g.learned,
                              "influence": _finite(measure({gate})[0]), "reference": _finite(measure({ref})[0]),
                              "input_dependent": moved.get(g.gate, 0.0) >= threshold}
                             for g, (gate, ref) in zip(layout.gates, gate_sites)]
    return measured


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else 1e30


def run(job, runner, model: onnx.ModelProto, describe) -> None:
    """Answer `structure.json`; `describe` words an onnxruntime error for a student."""
    spec = job.spec["structure"]
    try:
        probe = job.array(spec["probe"]).astype(np.float32)
        session = _exposed(runner)
        shapes = {name: tuple(int(d) for d in v.shape) for name, v in _all_values(session, runner, probe).items()}
        layout, topo = analyse(model.graph, shapes, runner.input, runner.output)
        small = job.array(spec["influence_probe"]).astype(np.float32)
        try:
            values = _all_values(session, runner, small)
        except Exception:  # a network that needs larger inputs: measure on the full probe
            small, values = probe, _all_values(session, runner, probe)
        del session
        measured = _measure(layout, topo, model, runner, values, small, float(spec["threshold"]), int(spec["seed"]))
    except AnalysisError as err:
        job.answer("structure.json", {"error": str(err), "kind": "analysis"})
        return
    except Exception as err:
        job.answer("structure.json", {"error": describe(err, job.spec["memory_gib"])})
        return
    job.answer("structure.json", {"layout": {
        "input_size": list(layout.input_size), "output_shape": list(layout.output_shape),
        "trunk_levels": [list(s) for s in layout.trunk_levels], "bottleneck": list(layout.bottleneck),
        "stem": list(layout.stem) if layout.stem else None, "bypass": layout.bypass,
        "trunk_weights": layout.trunk_weights, "op_types": layout.op_types, **measured}})
