import Autodiff
import TensorCore

/// Finite-difference check of the gradients of `f` with respect to each of `inputs`.
///
/// The scalar checked is sum(f(inputs) * w) for a fixed random w, so every output element
/// contributes. Central differences in float32 need a step around 1e-2 and a loose relative
/// tolerance; returns the worst |analytic - numeric| / (atol + rtol * |numeric|) per input.
public func gradientCheck(_ inputs: [Tensor], step: Float = 1e-2, rtol: Float = 2e-2, atol: Float = 2e-3,
                          seed: UInt64 = 7, _ f: ([Variable]) -> Variable) -> [Float] {
    let probeShape = f(inputs.map { Variable($0) }).value.shape
    let w = Tensor.randomNormal(probeShape, seed: seed, purpose: 99)
    func objective(_ xs: [Tensor]) -> Double {
        let y = withoutGradients { f(xs.map { Variable($0) }) }.value
        var s: Double = 0
        for i in 0..<y.count { s += Double(y[flat: i]) * Double(w[flat: i]) }
        return s
    }
    let vars = inputs.map { Variable($0, requiresGrad: true) }
    f(vars).backward(seed: w)
    var worst: [Float] = []
    for (k, input) in inputs.enumerated() {
        let analytic = vars[k].grad ?? Tensor.zeros(input.shape)
        var numeric = Tensor.zeros(input.shape)
        for i in 0..<input.count {
            var plus = inputs, minus = inputs
            plus[k][flat: i] += step
            minus[k][flat: i] -= step
            numeric[flat: i] = Float((objective(plus) - objective(minus)) / Double(2 * step))
        }
        worst.append(analytic.closeness(to: numeric, rtol: rtol, atol: atol))
    }
    return worst
}
