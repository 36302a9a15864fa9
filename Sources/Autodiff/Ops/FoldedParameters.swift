import TensorCore

// The folded weight and bias of a conv + batch norm with frozen statistics, as differentiable
// values of the real parameters (Tune mode with a quantized student, which fake-quantizes the
// folded weight before its one convolution): s = gamma / sqrt(runningVar + eps),
// w' = w * s, b' = (b - runningMean) * s + beta. The backward passes are convBatchNormFolded's
// split in two: dL/dw = dL/dw' * s, dL/db = dL/db' * s, dL/dbeta = dL/db', and gamma collects
// invStd * (sum_k dL/dw'[o,k] w[o,k]) from the weight and invStd * dL/db'[o] (b[o] - mean[o])
// from the bias. Values are exactly `BatchNormFold`'s and `scaledPerOutputChannel`'s, so an
// export that folds with them reads the same numbers.

/// w' = w * s per output channel, s = gamma / sqrt(runningVar + eps).
/// - weight: [O, ...]; gamma, runningVar: [O].
public func foldedConvWeight(_ weight: Variable, gamma: Variable, runningVar: Tensor, eps: Float) -> Variable {
    let o = weight.shape[0]
    precondition(gamma.shape == [o] && runningVar.count == o,
                 "folded weight: BN of \(gamma.shape) for a conv with \(o) output channels")
    let fold = BatchNormFold(gamma: gamma.value.scalars, beta: nil, runningMean: [Float](repeating: 0, count: o),
                             runningVar: runningVar.scalars, eps: eps, convBias: nil)
    let (scale, invStd) = (fold.scale, fold.inverseStd)
    let wv = weight.value
    return record(wv.scaledPerOutputChannel(scale), [weight, gamma], saving: [wv]) { gw, needs in
        var result: [Tensor?] = [needs[0] ? gw.scaledPerOutputChannel(scale) : nil, nil]
        if needs[1] {
            let k = wv.count / Swift.max(o, 1)
            var dg = [Float](repeating: 0, count: o)
            gw.withUnsafeBufferPointer { gp in
                wv.withUnsafeBufferPointer { wp in
                    for ch in 0..<o {
                        var s: Float = 0
                        for i in 0..<k { s += gp[ch * k + i] * wp[ch * k + i] }
                        dg[ch] = invStd[ch] * s
                    }
                }
            }
            result[1] = Tensor(shape: [o], scalars: dg)
        }
        return result
    }
}

/// b' = (b - runningMean) * s + beta per output channel, s = gamma / sqrt(runningVar + eps).
/// - bias: [O] or nil (a conv without bias: b = 0); gamma, beta, statistics: [O].
public func foldedConvBias(_ bias: Variable?, gamma: Variable, beta: Variable,
                           runningMean: Tensor, runningVar: Tensor, eps: Float) -> Variable {
    let o = gamma.shape[0]
    precondition(gamma.shape == [o] && beta.shape == [o] && runningMean.count == o && runningVar.count == o
                 && (bias == nil || bias!.shape == [o]), "folded bias: inconsistent shapes for \(o) channels")
    let b = bias?.value.scalars ?? [Float](repeating: 0, count: o)
    let mean = runningMean.scalars
    let fold = BatchNormFold(gamma: gamma.value.scalars, beta: beta.value.scalars, runningMean: mean,
                             runningVar: runningVar.scalars, eps: eps, convBias: bias?.value.scalars)
    let (scale, invStd) = (fold.scale, fold.inverseStd)
    var inputs = [gamma, beta]
    if let bias { inputs.append(bias) }
    return record(Tensor(shape: [o], scalars: fold.bias), inputs) { gb, needs in
        let g = gb.scalars
        var result: [Tensor?] = [nil, needs[1] ? gb : nil]
        if needs[0] { result[0] = Tensor(shape: [o], scalars: (0..<o).map { g[$0] * (b[$0] - mean[$0]) * invStd[$0] }) }
        if bias != nil { result.append(needs[2] ? gb.scaledPerOutputChannel(scale) : nil) }
        return result
    }
}
