"""Backend-agnostic building blocks of the losses (``keras.ops`` only).

Everything here works on channels-last tensors. Where SMP drops ignored
elements with boolean indexing (not traceable under ``jax.jit``), these
functions take a ``valid`` mask of 0/1 floats instead; the results are the
same because ignored elements are both zeroed and left out of counts.
"""

from keras import ops


def soft_tversky_score(output, target, alpha, beta, smooth=0.0, eps=1e-7,
                       axis=None):
    """Soft Tversky index, summed over ``axis`` (everything if ``None``).

    Same formulation as SMP: with ``P = sum(p)``, ``T = sum(t)`` and
    ``D = sum(|p - t|)``, the intersection is ``(P + T - D) / 2`` (which is
    ``sum(min(p, t))``), ``fp = P - I``, ``fn = T - I`` and the score is
    ``(I + smooth) / max(I + alpha * fp + beta * fn + smooth, eps)``.
    """
    output_sum = ops.sum(output, axis=axis)
    target_sum = ops.sum(target, axis=axis)
    difference = ops.sum(ops.abs(output - target), axis=axis)
    intersection = (output_sum + target_sum - difference) / 2.0
    fp = output_sum - intersection
    fn = target_sum - intersection
    denominator = intersection + alpha * fp + beta * fn + smooth
    return (intersection + smooth) / ops.maximum(denominator, eps)


def soft_dice_score(output, target, smooth=0.0, eps=1e-7, axis=None):
    """Tversky with alpha = beta = 0.5: ``(2I + 2s) / (P + T + 2s)``."""
    return soft_tversky_score(output, target, 0.5, 0.5, smooth, eps, axis)


def soft_jaccard_score(output, target, smooth=0.0, eps=1e-7, axis=None):
    """Tversky with alpha = beta = 1: ``(I + s) / (P + T - I + s)``."""
    return soft_tversky_score(output, target, 1.0, 1.0, smooth, eps, axis)


def binary_cross_entropy_with_logits(logits, target, weight=None,
                                     pos_weight=None):
    """Element-wise BCE on logits, as ``torch.nn.functional`` defines it.

    ``-w * (pw * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))``
    written with softplus, which is stable for large ``|x|`` and whose
    derivative is exactly ``sigmoid(x) - t`` (for ``pw = 1``).
    """
    pos_term = target * ops.softplus(-logits)
    if pos_weight is not None:
        pos_term = pos_term * pos_weight
    loss = pos_term + (1.0 - target) * ops.softplus(logits)
    if weight is not None:
        loss = loss * weight
    return loss


def focal_terms(output, target, gamma=2.0, alpha=None, reduced_threshold=None):
    """Element-wise focal loss and focal modulating term.

    Returns ``(loss, focal_term)`` before normalization and reduction, like
    SMP's ``focal_loss_with_logits``: ``logpt = BCE(output, target)``,
    ``pt = exp(-logpt)``, ``focal_term = (1 - pt) ** gamma`` (or
    ``((1 - pt) / r) ** gamma`` set to 1 where ``pt < r`` for the reduced
    variant), ``loss = focal_term * logpt`` optionally times
    ``alpha * t + (1 - alpha) * (1 - t)``.
    """
    logpt = binary_cross_entropy_with_logits(output, target)
    pt = ops.exp(-logpt)
    if reduced_threshold is None:
        focal_term = ops.power(1.0 - pt, gamma)
    else:
        focal_term = ops.power((1.0 - pt) / reduced_threshold, gamma)
        focal_term = ops.where(pt < reduced_threshold, 1.0, focal_term)
    loss = focal_term * logpt
    if alpha is not None:
        loss = loss * (alpha * target + (1.0 - alpha) * (1.0 - target))
    return loss, focal_term


def lovasz_grad(gt_sorted):
    """Gradient of the Lovasz extension w.r.t. sorted errors (last axis).

    ``gt_sorted`` holds 0/1 ground truth sorted by decreasing error.
    """
    gts = ops.sum(gt_sorted, axis=-1, keepdims=True)
    intersection = gts - ops.cumsum(gt_sorted, axis=-1)
    union = gts + ops.cumsum(1.0 - gt_sorted, axis=-1)
    jaccard = 1.0 - intersection / union
    if gt_sorted.shape[-1] is not None and gt_sorted.shape[-1] <= 1:
        return jaccard
    return ops.concatenate(
        [jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1
    )


def _sort_descending(errors, valid, invalid_key):
    """Permutation sorting ``errors`` descending, invalid entries last."""
    return ops.argsort(ops.where(valid > 0, -errors, -invalid_key), axis=-1)


def lovasz_hinge_rows(logits, labels, valid):
    """Binary Lovasz hinge for each row of ``(R, P)`` tensors.

    ``labels`` is 0/1, ``valid`` 0/1 (0 = ignored pixel). Ignored pixels are
    sorted to the end with a zero error and zero label, so they contribute
    nothing, which equals removing them (shapes stay static for jit / XLA).
    A row without valid pixels gives 0.
    """
    labels = labels * valid
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    perm = _sort_descending(errors, valid, float("-inf"))
    errors_sorted = ops.take_along_axis(errors * valid, perm, axis=-1)
    gt_sorted = ops.take_along_axis(labels, perm, axis=-1)
    grad = lovasz_grad(gt_sorted)
    return ops.sum(ops.relu(errors_sorted) * grad, axis=-1)


def lovasz_softmax_rows(probas, fg, valid):
    """Lovasz-Softmax (classes="present") for each row.

    ``probas`` and ``fg`` (one-hot ground truth, zero at ignored pixels) are
    ``(R, P, C)``, ``valid`` is ``(R, P)``. For every class present in the
    row, the Lovasz extension of the absolute errors is computed; the row
    loss is the mean over present classes (0 if none is present).
    """
    fg_t = ops.moveaxis(fg, -1, 1)  # (R, C, P)
    probas_t = ops.moveaxis(probas, -1, 1)
    valid_t = ops.expand_dims(valid, 1)
    errors = ops.abs(fg_t - probas_t) * valid_t
    perm = _sort_descending(errors, valid_t, -1.0)
    errors_sorted = ops.take_along_axis(errors, perm, axis=-1)
    fg_sorted = ops.take_along_axis(fg_t, perm, axis=-1)
    class_losses = ops.sum(errors_sorted * lovasz_grad(fg_sorted), axis=-1)
    present = ops.cast(ops.sum(fg_t, axis=-1) > 0, class_losses.dtype)
    n_present = ops.sum(present, axis=-1)
    return ops.sum(class_losses * present, axis=-1) / ops.maximum(n_present, 1.0)
