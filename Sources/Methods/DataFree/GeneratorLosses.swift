import Autodiff
import NN
import TensorCore

/// What one frozen-teacher pass over synthetic images gives the generator losses.
public struct TeacherPass {
    public let logits: Variable
    /// Output of the last stage, before pooling: [N, C, h, w].
    public let features: Variable
    /// Each BN's input, in module order (captured when asked for).
    public let batchNormInputs: [Variable]
}

/// The teacher on synthetic images `x`, with its BNs in eval mode (running statistics) or, for
/// the consistency term, in train mode with batch statistics that do not touch the running ones.
public func teacherPass(_ teacher: ResNet, _ x: Variable, batchStatistics: Bool = false, captureBatchNormInputs: Bool = false,
                        reducer: BatchStatisticsReducer? = nil) -> TeacherPass {
    let norms = teacher.batchNorms
    for bn in norms {
        bn.capturesInput = captureBatchNormInputs
        bn.updatesRunningStatistics = false
        bn.reducer = reducer
    }
    teacher.setMode(batchStatistics ? .train : .eval)
    let features = teacher.features(x)
    let logits = teacher.classify(features)
    let inputs = captureBatchNormInputs ? norms.map { $0.lastInput! } : []
    for bn in norms { bn.capturesInput = false; bn.updatesRunningStatistics = true }
    teacher.setMode(.eval)
    return TeacherPass(logits: logits, features: features, batchNormInputs: inputs)
}

/// GDFQ's batch-norm statistics loss: for every teacher BN l, the batch mean and biased batch
/// variance of its input over (N, H, W) against its running statistics:
/// (1/L) sum_l [MSE(mu_l, running_mean_l) + MSE(var_l, running_var_l)].
/// With a reducer the statistics are those of the global batch.
public func batchNormStatisticsLoss(_ pass: TeacherPass, teacher: ResNet, reducer: BatchStatisticsReducer? = nil) -> Variable {
    let norms = teacher.batchNorms
    precondition(!norms.isEmpty && pass.batchNormInputs.count == norms.count,
                 "BNS loss needs the inputs of every teacher batch norm (capture them in the teacher pass)")
    var total: Variable?
    for (bn, input) in zip(norms, pass.batchNormInputs) {
        let moments = channelMoments(input, reducer: reducer)   // [2, C]
        let target = Tensor.concatenate(channels: [bn.runningMean.value.reshaped([1, bn.channels]),
                                                   bn.runningVar.value.reshaped([1, bn.channels])])
        // MSE over each row: the mean and the variance terms weigh equally.
        let term = mse(moments, Variable(target.reshaped([2, bn.channels]))) * 2
        total = total.map { $0 + term } ?? term
    }
    return total! * (1 / Float(norms.count))
}

/// ACQ's attention of the teacher's last-stage features: the normalised map P (a distribution
/// over the h x w positions), Â = h*w*P (mean 1), and the attention centre in [-1, 1]^2.
public struct Attention {
    public let distribution: Variable   // P: [N, h, w]
    public let scaled: Variable         // Â: [N, h, w]
    public let centre: Variable         // [N, 2] as (x, y)

    public init(features: Variable) {
        distribution = normalizedPerSample(attentionMap(features))
        let positions = Float(distribution.shape[1] * distribution.shape[2])
        scaled = distribution * positions
        centre = weightedCentroid(distribution)
    }
}

/// Attention-centre matching: mean over the batch of ||c_b - p_b||^2. - p: [N, 2].
public func attentionCentreLoss(_ attention: Attention, positions p: Tensor) -> Variable {
    mse(attention.centre, Variable(p)) * 2
}

/// The paired (mode-seeking) loss over samples (2k, 2k+1), which share label and position:
/// d = mean|Â(x_2k) - Â(x_2k+1)| / mean|z_2k - z_2k+1|, loss 1 / (d + 1e-5). Both means run over
/// all pairs of the global batch (a reducer sums them over ranks; pairs never straddle ranks).
/// - z: [N, latent], N even.
public func pairedLoss(_ attention: Attention, noise z: Tensor, reducer: BatchStatisticsReducer? = nil) -> Variable {
    let n = z.shape[0]
    precondition(n % 2 == 0 && n >= 2, "the paired loss needs an even batch of pairs, got \(n) samples")
    let even = Array(stride(from: 0, to: n, by: 2)), odd = even.map { $0 + 1 }
    let a = attention.scaled
    let numerator = globalMean(abs(selectRows(a, even) - selectRows(a, odd)), reducer: reducer)
    let width = z.shape[1]
    // Per pair: sum |z_2k - z_2k+1| and its element count, added over the global batch's pairs.
    var perPair = [Double](repeating: Double(width), count: n)
    for k in 0..<(n / 2) {
        var s: Double = 0
        for j in 0..<width { s += Double(Swift.abs(z[flat: (2 * k) * width + j] - z[flat: (2 * k + 1) * width + j])) }
        perPair[2 * k] = s
    }
    let zSums = sumOverRows(perPair, width: 2, reducer: reducer)
    let denominator = Float(zSums[0] / zSums[1])
    return reciprocal(numerator * (1 / denominator) + 1e-5)
}

/// Eval/train attention consistency: mean over b, i, j of (Â_eval - Â_train)^2.
public func attentionConsistencyLoss(eval: Attention, train: Attention) -> Variable {
    mse(eval.scaled, train.scaled)
}
