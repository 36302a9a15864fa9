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
    let invStd = runningVar.scalars.map { 1 / ($0 + eps).squareRoot() }
    let mean = runningMean.scalars
    let g = gamma.value.scalars, b = bias?.value.scalars ?? [Float](repeating: 0, count: o)
    let scale = (0..<o).map { g[$0] * invStd[$0] }
    let wv = weight.value
    let folded = wv.scaledPerOutputChannel(scale)
    let foldedBias = Tensor(shape: [o], scalars: (0..<o).map { (b[$0] - mean[$0]) * scale[$0] + beta.value[flat: $0] })
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
