import TensorCore

/// Batch statistics of one batch-norm forward: mean and biased variance per channel, and the
/// number of elements they were computed over (across all ranks when reduced).
public struct BatchStatistics {
    public var mean: [Double]
    public var variance: [Double]
    public var count: Int
}

/// Batch norm with batch statistics (train mode): y = gamma * (x - mean) / sqrt(var + eps) + beta.
/// - x: [N, C, ...]; gamma, beta: [C] or nil (affine-free).
/// - reducer: sums the statistics over ranks so they are those of the global batch, in forward
///   and in backward.
/// Returns the output and the statistics (for the running-statistics update).
/// - relu: apply ReLU to the output in the same pass (batch norm followed by ReLU, as one op).
public func batchNormTraining(_ x: Variable, gamma: Variable?, beta: Variable?, eps: Float,
                              reducer: BatchStatisticsReducer? = nil, relu: Bool = false) -> (Variable, BatchStatistics) {
    let xv = x.value
    precondition(xv.rank >= 2, "batch norm input must be [N, C, ...], got \(xv.shape)")
    let c = xv.shape[1]
    // One reduction: per sample, sum x and sum x^2 per channel and the element count, added
    // over the global batch in sample order.
    let sums = sumOverRows(xv.channelSumsPerSample(appending: Double(xv.count / Swift.max(xv.shape[0] * c, 1))),
                           width: 2 * c + 1, reducer: reducer)
    let total = sums[2 * c]
    precondition(total > 0, "batch norm over an empty batch")
    let mean = (0..<c).map { sums[$0] / total }
    let variance = (0..<c).map { Swift.max(sums[c + $0] / total - mean[$0] * mean[$0], 0) }
    let stats = BatchStatistics(mean: mean, variance: variance, count: Int(total))
    let invStd = variance.map { Float(1 / ($0 + Double(eps)).squareRoot()) }
    let meanF = mean.map { Float($0) }
    let gammaV = gamma?.value.scalars ?? [Float](repeating: 1, count: c)
    let betaV = beta?.value.scalars ?? [Float](repeating: 0, count: c)
    let scale = (0..<c).map { gammaV[$0] * invStd[$0] }
    let y = xv.channelAffine(scale: scale, shift: (0..<c).map { betaV[$0] - meanF[$0] * scale[$0] }, relu: relu)

    var inputs = [x]
    if let gamma { inputs.append(gamma) }
    if let beta { inputs.append(beta) }
    let hasGamma = gamma != nil, hasBeta = beta != nil
    let out = record(y, inputs, saving: relu ? [xv, y] : [xv]) { gyOut, needs in
        // Through the ReLU first: its output's sign is its input's.
        let gy = relu ? gyOut.maskedByPositive(y) : gyOut
        // Per sample and channel: sum dy and sum dy * (x - mean); xhat = (x - mean) * invStd.
        let perSample = gy.channelDotSumsPerSample(with: xv, center: meanF)
        let n = xv.shape[0]
        var gx: Tensor? = nil
        if needs[0] {
            let red = sumOverRows(perSample, width: 2 * c, reducer: reducer)
            // dx = k (dy - mean(dy) - xhat mean(dy xhat)) with k = gamma * invStd, rewritten as
            // dy * alpha + x * beta + gamma per channel.
            var alpha = [Float](repeating: 0, count: c), beta = alpha, shift = alpha
            for ch in 0..<c {
                let k = scale[ch], inv = invStd[ch]
                let mdy = Float(red[ch] / total), mdyx = Float(red[c + ch] / total)
                alpha[ch] = k
                beta[ch] = -k * inv * inv * mdyx
                shift[ch] = -k * mdy - beta[ch] * meanF[ch]
            }
            gx = gy.channelLinearCombination(xv, alpha: alpha, beta: beta, gamma: shift)
        }
        // Parameter gradients stay local (the gradient all-reduce sums them over ranks), each
        // sample's part added in sample order.
        var result: [Tensor?] = [gx]
        if let gamma, needs[1] {
            let rows = (0..<(n * c)).map { Float(perSample[($0 / c) * 2 * c + c + $0 % c]) * invStd[$0 % c] }
            result.append(sampleOrderedGradient(rows, samples: n, shape: [c], leaf: gamma))
        } else if hasGamma { result.append(nil) }
        if let beta, needs[hasGamma ? 2 : 1] {
            let rows = (0..<(n * c)).map { Float(perSample[($0 / c) * 2 * c + $0 % c]) }
            result.append(sampleOrderedGradient(rows, samples: n, shape: [c], leaf: beta))
        } else if hasBeta { result.append(nil) }
        return result
    }
    return (out, stats)
}

/// Batch norm with fixed statistics (eval mode): y = gamma * (x - mean) / sqrt(var + eps) + beta.
/// - x: [N, C, ...]; runningMean, runningVar: [C].
public func batchNormInference(_ x: Variable, gamma: Variable?, beta: Variable?,
                               runningMean: Tensor, runningVar: Tensor, eps: Float) -> Variable {
    let xv = x.value
    precondition(xv.rank >= 2, "batch norm input must be [N, C, ...], got \(xv.shape)")
    let c = xv.shape[1]
    precondition(runningMean.count == c && runningVar.count == c,
                 "batch norm statistics of \(runningMean.count) channels for input \(xv.shape)")
    let mean = runningMean.scalars
    let invStd = runningVar.scalars.map { 1 / ($0 + eps).squareRoot() }
    let gammaV = gamma?.value.scalars ?? [Float](repeating: 1, count: c)
    let betaV = beta?.value.scalars ?? [Float](repeating: 0, count: c)
    let scale = (0..<c).map { gammaV[$0] * invStd[$0] }
    let y = xv.channelAffine(scale: scale, shift: (0..<c).map { betaV[$0] - mean[$0] * scale[$0] })
    var inputs = [x]
    if let gamma { inputs.append(gamma) }
    if let beta { inputs.append(beta) }
    let hasGamma = gamma != nil, hasBeta = beta != nil
    return record(y, inputs, saving: [xv]) { gy, needs in
        let gx: Tensor? = needs[0] ? gy.channelAffine(scale: scale, shift: [Float](repeating: 0, count: c)) : nil
        var result: [Tensor?] = [gx]
        if hasGamma || hasBeta {
            // dgamma = sum dy * xhat, dbeta = sum dy.
            let (sg, sgx) = gy.channelDotSums(with: xv, center: mean)
            if hasGamma { result.append(Tensor(shape: [c], scalars: (0..<c).map { Float(sgx[$0]) * invStd[$0] })) }
            if hasBeta { result.append(Tensor(shape: [c], scalars: sg.map { Float($0) })) }
        }
        return result
    }
}
