"""Functional-model execution that lets go of each intermediate tensor after its last use.

Keras's ``Function._run_through_graph`` keeps every computed tensor in one dictionary until the
whole graph has run. Eagerly (the torch backend; predict_on_batch) that holds every activation of
a forward pass alive at once: nothing freed is reused, so each layer writes to fresh pages (on a
2-core CPU, Unet-resnet34's forward spent ~20% longer in convolutions and 9x longer in ReLU than
SMP's). ``ReleasingGraph`` runs the same nodes in the same order with the same calls, and drops a
tensor once the last node that reads it has run. Numerics are unchanged; under tracing (JAX, TF
graphs) it only shortens Python references.

On the torch backend it also skips, per layer, Keras's ``Layer.__call__`` bookkeeping where that
bookkeeping does nothing but what is repeated here: a built layer with a float policy (float32 or
mixed; not quantized; no activity regularizer, remat, torch hooks or distribution) given tensors
without masks gets its ``call`` directly, with what Keras would do around it: floating inputs cast to
the layer's compute dtype, the autocast scope of a mixed policy entered, and the ``training`` value
injected. ``__call__`` costs 50-180 us per layer on this CPU (its argument-tree walks), 10-30 ms of a
Unet-resnet34 forward, which on a GPU is time the kernels wait for; every other layer goes through it.
"""

import keras
from keras.src import backend, tree
from keras.src.backend.common import global_state
from keras.src.distribution import distribution_lib
from keras.src.models.functional import unpack_singleton

TORCH = keras.backend.backend() == "torch"
if TORCH:
    import torch
    from torch.nn.modules import module as _torch_module


class ReleasingGraph:
    """Mixin for a ``keras.Model`` built functionally (``Model(inputs, outputs)``): the model's
    graph runs with intermediates released after their last consumer (see the module docstring)."""

    def call(self, inputs, training=None, mask=None, **kwargs):
        if not TORCH or mask is not None or kwargs or torch.compiler.is_compiling() \
                or distribution_lib.distribution() is not None:
            return super().call(inputs, training=training, mask=mask, **kwargs)
        if training is None:  # what Keras resolves for the layers: the enclosing call's value
            context = global_state.get_global_attribute("current_call_ctx")
            training = None if context is None else context.get_value("training")
        outputs = self._run_through_graph(self._standardize_inputs(inputs), operation_fn=lambda op: _direct(op, training))
        return unpack_singleton(outputs)

    def _run_through_graph(self, inputs, operation_fn=lambda op: op, call_fn=None):
        if call_fn is not None:  # symbolic runs (output specs at construction): Keras's own
            return super()._run_through_graph(inputs, operation_fn=operation_fn, call_fn=call_fn)
        plan = self.__dict__.get("_release_plan")
        if plan is None:
            plan = self.__dict__["_release_plan"] = _release_plan(self)
        steps, output_ids = plan
        tensors = {id(x): y for x, y in zip(self.inputs, tree.flatten(inputs))}
        for node, done_with in steps:
            args, kwargs = node.arguments.fill_in(tensors)
            outputs = operation_fn(self._get_operation_for_node(node))(*args, **kwargs)
            del args, kwargs
            for x, y in zip(node.outputs, tree.flatten(outputs)):
                tensors[id(x)] = y
            del outputs
            for key in done_with:
                tensors.pop(key, None)
        return tree.pack_sequence_as(self._outputs_struct, [tensors[key] for key in output_ids])


def _release_plan(function):
    """The nodes Keras would run, in its order, each with the tensor ids no later node reads."""
    available = {id(x) for x in function.inputs}
    order = []
    for depth in sorted(function._nodes_by_depth, reverse=True):
        for node in function._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            if any(id(x) not in available for x in node.input_tensors):
                continue  # not computable from these inputs (Keras skips it too)
            order.append(node)
            available.update(id(x) for x in node.outputs)
    output_ids = [id(x) for x in function.outputs]
    missing = [i for i, key in enumerate(output_ids) if key not in available]
    if missing:
        path = ".".join(str(p) for p in tree.flatten_with_path(function._outputs_struct)[missing[0]][0])
        raise ValueError(f"Output with path `{path}` is not connected to `inputs`")
    last_use = {}
    for step, node in enumerate(order):
        for x in node.input_tensors:
            last_use[id(x)] = step
    keep = set(output_ids)
    done_with = [[] for _ in order]
    for key, step in last_use.items():
        if key not in keep:
            done_with[step].append(key)
    return [(node, tuple(keys)) for node, keys in zip(order, done_with)], output_ids


def _direct(layer, training):
    """``layer``'s call for one node: ``layer.call`` where ``__call__`` would add nothing (module docstring)."""
    accepts = getattr(layer, "_call_has_context_arg", {}).get("training", False)
    inject = accepts and training is not None
    if not _plain(layer):  # Keras's __call__, given the training value (over one the node may carry)
        return (lambda *args, **kwargs: layer(*args, **{**kwargs, "training": training})) if inject else layer
    cast_to = layer.input_dtype if layer.autocast and layer._convert_input_args else None

    def run(*args, **kwargs):
        if inject:
            kwargs["training"] = training
        try:
            args, kwargs = _converted(args, cast_to), dict(zip(kwargs, _converted(kwargs.values(), cast_to)))
        except _NotPlain:
            return layer(*args, **kwargs)
        scope = _autocast_scope(layer)
        if scope is None:
            return layer.call(*args, **kwargs)
        with scope:
            return layer.call(*args, **kwargs)

    return run


def _plain(layer):
    return (isinstance(layer, keras.layers.Layer) and layer.built
            and isinstance(layer.dtype_policy, keras.DTypePolicy) and layer.dtype_policy.quantization_mode is None
            and backend.is_float_dtype(layer.compute_dtype) and getattr(layer, "quantization_mode", None) is None
            and not layer._remat_mode and layer.activity_regularizer is None
            and not layer._forward_hooks and not layer._forward_pre_hooks
            and not _torch_module._global_forward_hooks and not _torch_module._global_forward_pre_hooks)


class _NotPlain(Exception):
    """An argument ``__call__`` must see: a masked tensor, or a value that is not a tensor or plain constant."""


def _converted(values, dtype):
    """``values`` (lists / tuples looked into) with floating torch tensors cast to ``dtype`` (None: kept),
    as Keras's ``__call__`` converts them; _NotPlain for anything else it would have to handle."""
    out = []
    for value in values:
        if isinstance(value, (list, tuple)):
            value = type(value)(_converted(value, dtype))
        elif isinstance(value, torch.Tensor):
            if getattr(value, "_keras_mask", None) is not None:
                raise _NotPlain
            if dtype is not None and value.is_floating_point() and backend.standardize_dtype(value.dtype) != dtype:
                value = backend.cast(value, dtype)
        elif value is not None and not isinstance(value, (bool, int, float, str)):
            raise _NotPlain
        out.append(value)
    return out


def _autocast_scope(layer):
    """The autocast scope Keras's ``__call__`` would enter around ``layer.call`` (None: none)."""
    current = backend.get_autocast_scope()
    if current is not None:
        if not layer.autocast:
            return backend.AutocastScope(None)
        return backend.AutocastScope(layer.compute_dtype) if current.dtype != layer.compute_dtype else None
    if layer.compute_dtype != layer.variable_dtype:
        return backend.AutocastScope(layer.compute_dtype)
    return None
