import TensorCore

/// Convolution followed by batch norm with frozen statistics, computed as one convolution whose
/// weights are folded from the real parameters at every call (Tune mode):
/// s = gamma / sqrt(runningVar + eps), w' = w * s, b' = (b - runningMean) * s + beta.
/// Values and gradients equal conv-then-BN in eval mode, but backward keeps only the conv input:
/// the conv output that eval-mode BN would keep for its gamma gradient is never stored.
/// - x: [N, C, H, W]; weight: [O, C, k, k]; bias: [O] or nil; gamma, beta, statistics: [O].
public func convBatchNormFolded(_ x: Variable, weight: Variable, bias: Variable?, gamma: Variable, beta: Variable,
                                runningMean: Tensor, runningVar: Tensor, eps: Float,
                                stride: Int, padding: Int) -> Variable {
    let o = weight.shape[0]
    precondition(gamma.shape == [o] && beta.shape == [o] && runningMean.count == o && runningVar.count == o,
                 "folded conv+BN: BN of \(gamma.shape) for a conv with \(o) output channels")
    // The folds are tiny ops on parameters; the conv keeps only its input and the folded weight.
    let folded = foldedConvWeight(weight, gamma: gamma, runningVar: runningVar, eps: eps)
    let foldedBias = foldedConvBias(bias, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar, eps: eps)
    return conv2d(x, weight: folded, bias: foldedBias, stride: stride, padding: padding)
}

/// A batch norm with fixed statistics folded into the convolution before it (method.md section 6):
/// s = gamma / sqrt(var + eps) per output channel, w' = w * s, b' = (b - mean) * s + beta.
public struct BatchNormFold: Sendable {
    /// 1 / sqrt(var + eps) per channel.
    public let inverseStd: [Float]
    /// s per channel.
    public let scale: [Float]
    /// b' per channel.
    public let bias: [Float]

    /// - gamma, beta: nil for an affine-free batch norm (1 and 0); convBias: nil for a conv without bias.
    public init(gamma: [Float]?, beta: [Float]?, runningMean: [Float], runningVar: [Float], eps: Float, convBias: [Float]?) {
        let o = runningMean.count
        let g = gamma ?? [Float](repeating: 1, count: o), be = beta ?? [Float](repeating: 0, count: o)
        let b = convBias ?? [Float](repeating: 0, count: o)
        let inv = runningVar.map { 1 / ($0 + eps).squareRoot() }
        let s = (0..<o).map { g[$0] * inv[$0] }
        inverseStd = inv
        scale = s
        bias = (0..<o).map { (b[$0] - runningMean[$0]) * s[$0] + be[$0] }
    }
}

extension Tensor {
    /// Each slice along axis 0 multiplied by its own factor: w[o, ...] * s[o].
    public func scaledPerOutputChannel(_ s: [Float]) -> Tensor {
        precondition(rank >= 1 && shape[0] == s.count, "per-channel scale of \(s.count) for \(shape)")
        let k = count / Swift.max(shape[0], 1)
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for o in 0..<shape[0] {
                    for i in 0..<k { dst[o * k + i] = src[o * k + i] * s[o] }
                }
            }
        }
        return out
    }
}
