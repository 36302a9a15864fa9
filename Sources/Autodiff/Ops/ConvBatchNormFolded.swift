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
    let fold = BatchNormFold(gamma: gamma.value.scalars, beta: beta.value.scalars, runningMean: runningMean.scalars,
                             runningVar: runningVar.scalars, eps: eps, convBias: bias?.value.scalars)
    let (invStd, mean, scale) = (fold.inverseStd, runningMean.scalars, fold.scale)
    let b = bias?.value.scalars ?? [Float](repeating: 0, count: o)
    let wv = weight.value
    let folded = wv.scaledPerOutputChannel(scale)
    let foldedBias = Tensor(shape: [o], scalars: fold.bias)
    let y = conv2dForward(x.value, weight: folded, bias: foldedBias, stride: stride, padding: padding)
    let xv = x.value
    var inputs = [x, weight, gamma, beta]
    if let bias { inputs.append(bias) }
    return record(y, inputs, saving: [xv, folded]) { gy, needs in
        let needFoldedWeight = needs[1] || needs[2]
        let grads = conv2dBackward(xv, weight: folded, gradOutput: gy, stride: stride, padding: padding,
                                   needInput: needs[0], needWeight: needFoldedWeight, needBias: true)
        let gb = grads.bias!   // dL/db' = sum of dy per channel
        var result: [Tensor?] = [grads.input, nil, nil, needs[3] ? gb : nil]
        if needs[1] { result[1] = grads.weight!.scaledPerOutputChannel(scale) }
        if needs[2] {
            // dL/dgamma = invStd * (sum_k dL/dw'[o,k] * w[o,k] + dL/db'[o] * (b[o] - mean[o])).
            let gwf = grads.weight!
            let k = wv.count / o
            var dg = [Float](repeating: 0, count: o)
            gwf.withUnsafeBufferPointer { gp in
                wv.withUnsafeBufferPointer { wp in
                    for ch in 0..<o {
                        var s: Float = 0
                        for i in 0..<k { s += gp[ch * k + i] * wp[ch * k + i] }
                        dg[ch] = invStd[ch] * (s + gb[flat: ch] * (b[ch] - mean[ch]))
                    }
                }
            }
            result[2] = Tensor(shape: [o], scalars: dg)
        }
        if bias != nil { result.append(needs[4] ? gb.scaledPerOutputChannel(scale) : nil) }
        return result
    }
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
