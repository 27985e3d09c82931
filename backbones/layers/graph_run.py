"""Functional-model execution that lets go of each intermediate tensor after its last use.

Keras's ``Function._run_through_graph`` keeps every computed tensor in one dictionary until the
whole graph has run. Eagerly (the torch backend; predict_on_batch) that holds every activation of
a forward pass alive at once: nothing freed is reused, so each layer writes to fresh pages (on a
2-core CPU, Unet-resnet34's forward spent ~20% longer in convolutions and 9x longer in ReLU than
SMP's). ``ReleasingGraph`` runs the same nodes in the same order with the same calls, and drops a
tensor once the last node that reads it has run. Numerics are unchanged; under tracing (JAX, TF
graphs) it only shortens Python references.

On the torch backend it also skips, per layer, Keras's ``Layer.__call__`` bookkeeping where that
bookkeeping does nothing: a built float32 layer (no mixed / quantized policy, no activity regularizer,
remat, torch hooks or distribution) given float32 tensors without masks gets its ``call`` directly,
with the ``training`` value Keras would inject. ``__call__`` costs 50-180 us per layer on this CPU
(its argument-tree walks), 10-30 ms of a Unet-resnet34 forward; every other layer goes through it.
"""

import keras
from keras.src import tree
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
    if not _plain(layer):
        return (lambda *args, **kwargs: layer(*args, training=training, **kwargs)) if inject else layer

    def run(*args, **kwargs):
        if inject:
            kwargs["training"] = training
        if _plain_tensors(args) and _plain_tensors(kwargs.values()):
            return layer.call(*args, **kwargs)
        return layer(*args, **kwargs)

    return run


def _plain(layer):
    return (isinstance(layer, keras.layers.Layer) and layer.built and layer.dtype_policy.name == "float32"
            and getattr(layer, "quantization_mode", None) is None and not layer._remat_mode
            and layer.activity_regularizer is None and not layer._forward_hooks and not layer._forward_pre_hooks
            and not _torch_module._global_forward_hooks and not _torch_module._global_forward_pre_hooks)


def _plain_tensors(values):
    """Every tensor among ``values`` (lists / tuples looked into) a float32 torch tensor without a Keras mask."""
    for value in values:
        if isinstance(value, (list, tuple)):
            if not _plain_tensors(value):
                return False
        elif isinstance(value, torch.Tensor):
            if value.dtype != torch.float32 or getattr(value, "_keras_mask", None) is not None:
                return False
        elif value is not None and not isinstance(value, (bool, int, float, str)):
            return False
    return True
