import Autodiff
import TensorCore

/// Batch normalisation over (N, H, W) per channel, with PyTorch's names and conventions:
/// normalisation by the biased batch variance, running variance updated with the unbiased one,
/// `running = (1 - momentum) * running + momentum * batch`.
public final class BatchNorm2d: Layer {
    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: Parameter
    public let runningVar: Parameter
    public let numBatchesTracked: Parameter
    public var eps: Float
    public var momentum: Float
    public private(set) var mode: Mode = .train
    /// Makes train-mode statistics those of the global batch across ranks (SyncBatchNorm).
    public var reducer: BatchStatisticsReducer?
    /// False for a batch norm that always normalises with batch statistics and keeps none
    /// (PyTorch's track_running_stats=False); Tune and Deploy modes do not apply to it.
    public var tracksRunningStatistics = true
    /// When false, train-mode forwards leave the running statistics untouched (a second pass
    /// of a frozen teacher with batch statistics).
    public var updatesRunningStatistics = true
    /// When true, each forward keeps its input in `lastInput` (losses on a teacher's BN inputs).
    public var capturesInput = false
    public private(set) var lastInput: Variable?
    /// Statistics of the last train-mode forward, for losses that compare them.
    public private(set) var lastBatchStatistics: BatchStatistics?

    public let channels: Int

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) {
        self.channels = channels
        weight = affine ? Parameter(Tensor.ones([channels])) : nil
        bias = affine ? Parameter(Tensor.zeros([channels])) : nil
        runningMean = Parameter(Tensor.zeros([channels]), kind: .buffer)
        runningVar = Parameter(Tensor.ones([channels]), kind: .buffer)
        numBatchesTracked = Parameter(Tensor.zeros([]), kind: .buffer, isInteger: true)
        self.eps = eps
        self.momentum = momentum
    }

    public var ownState: [(String, Parameter)] {
        var s: [(String, Parameter)] = []
        if let weight { s.append(("weight", weight)) }
        if let bias { s.append(("bias", bias)) }
        return s + [("running_mean", runningMean), ("running_var", runningVar),
                    ("num_batches_tracked", numBatchesTracked)]
    }

    public func didSetMode(_ mode: Mode) { self.mode = mode }

    /// - x: [N, C, H, W] (or [N, C]). Same shape out.
    public func forward(_ x: Variable) -> Variable { forward(x, relu: false) }

    /// relu(BN(x)) when `relu`: with batch statistics in one op and one pass (`batchNormTraining`).
    public func forward(_ x: Variable, relu applyReLU: Bool) -> Variable {
        precondition(x.value.rank >= 2 && x.shape[1] == channels,
                     "BatchNorm2d(\(channels)) got input \(x.shape)")
        lastInput = capturesInput ? x : nil
        guard mode.usesBatchStatistics || !tracksRunningStatistics else {
            let y = batchNormInference(x, gamma: weight?.variable, beta: bias?.variable,
                                       runningMean: runningMean.value, runningVar: runningVar.value, eps: eps)
            return applyReLU ? relu(y) : y
        }
        let (y, stats) = batchNormTraining(x, gamma: weight?.variable, beta: bias?.variable, eps: eps,
                                           reducer: reducer, relu: applyReLU)
        lastBatchStatistics = stats
        if updatesRunningStatistics && tracksRunningStatistics && mode.usesBatchStatistics { updateRunningStatistics(stats) }
        return y
    }

    func updateRunningStatistics(_ stats: BatchStatistics) {
        let m = Double(momentum)
        let n = Double(stats.count)
        let unbiased = n > 1 ? n / (n - 1) : 1
        var mean = runningMean.value.scalars, variance = runningVar.value.scalars
        for c in 0..<channels {
            mean[c] = Float((1 - m) * Double(mean[c]) + m * stats.mean[c])
            variance[c] = Float((1 - m) * Double(variance[c]) + m * stats.variance[c] * unbiased)
        }
        runningMean.assign(Tensor(shape: [channels], scalars: mean))
        runningVar.assign(Tensor(shape: [channels], scalars: variance))
        numBatchesTracked.assign(Tensor.scalar(numBatchesTracked.value.item + 1))
    }
}
