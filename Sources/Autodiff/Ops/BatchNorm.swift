import TensorCore

/// Sums per-channel statistics across the processes that share one global batch
/// (synchronised batch norm). The single-process reducer leaves them as they are.
public protocol BatchStatisticsReducer: AnyObject {
    /// Element-wise sum of `values` over all participants, in place.
    func allReduceSum(_ values: inout [Double])
}

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
public func batchNormTraining(_ x: Variable, gamma: Variable?, beta: Variable?, eps: Float,
                              reducer: BatchStatisticsReducer? = nil) -> (Variable, BatchStatistics) {
    let xv = x.value
    precondition(xv.rank >= 2, "batch norm input must be [N, C, ...], got \(xv.shape)")
    let c = xv.shape[1]
    // One reduction message: sum x per channel, sum x^2 per channel, element count.
    let (s, q) = xv.channelSums()
    var sums = s + q + [Double(xv.count / Swift.max(c, 1))]
    reducer?.allReduceSum(&sums)
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
    let y = xv.channelAffine(scale: scale, shift: (0..<c).map { betaV[$0] - meanF[$0] * scale[$0] })

    var inputs = [x]
    if let gamma { inputs.append(gamma) }
    if let beta { inputs.append(beta) }
    let hasGamma = gamma != nil, hasBeta = beta != nil
    let out = record(y, inputs, saving: [xv]) { gy, needs in
        // Per channel: sum dy and sum dy * (x - mean); xhat = (x - mean) * invStd.
        let (sg, sgx) = gy.channelDotSums(with: xv, center: meanF)
        let localDBeta = Tensor(shape: [c], scalars: sg.map { Float($0) })
        let localDGamma = Tensor(shape: [c], scalars: (0..<c).map { Float(sgx[$0]) * invStd[$0] })
        var gx: Tensor? = nil
        if needs[0] {
            var red = sg + sgx
            reducer?.allReduceSum(&red)
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
        // Parameter gradients stay local: the gradient all-reduce sums them over ranks.
        var result: [Tensor?] = [gx]
        if hasGamma { result.append(localDGamma) }
        if hasBeta { result.append(localDBeta) }
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
