import TensorCore

/// An op whose forward value is a piecewise-constant function of `x` (rounding, clamping to a
/// grid: fake quantization) and whose backward passes the output gradient to `x` unchanged.
///
/// This is the straight-through estimator (Bengio et al. 2013) in GDFQ's form: no mask outside
/// the clamping range, because the quantizer's range is the tensor's own min/max (weights) or a
/// running estimate of it (activations), so almost nothing is clamped. The true derivative of
/// rounding is zero almost everywhere, which is why the op needs its own backward.
/// - value: the forward result, computed by the caller from `x.value`; same shape as x.
public func straightThrough(_ x: Variable, value: Tensor) -> Variable {
    precondition(value.shape == x.shape, "straight-through value \(value.shape) for input \(x.shape)")
    return record(value, [x]) { gy, _ in [gy] }
}
