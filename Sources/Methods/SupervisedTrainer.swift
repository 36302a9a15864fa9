import Autodiff
import Data
import Distributed
import NN
import TensorCore

/// Data-parallel supervised training of a ResNet classifier, one global step at a time: every
/// rank assembles its shard of the global batch (the sampler and the augmentation depend only
/// on the seed, the step and the sample index, so any number of ranks sees the same global
/// batches), runs forward and backward on it, and `DataParallel` turns the local gradients into
/// the gradient of the global batch before the same SGD update on every rank.
///
/// It trains a new ResNet in train mode (pretraining) or an existing model in the mode it is
/// given: eval or tune keep batch norm on its running statistics (fine-tuning, `finetune`).
public final class SupervisedTrainer {
    public let model: ResNet
    /// The mode every step runs the model in.
    public let mode: Mode
    public let arena: ParameterArena
    public let parallel: DataParallel
    public let data: Dataset
    public let config: PretrainConfig
    public let sampler: EpochSampler
    let optimizer: SGD
    let schedule: any LearningRateSchedule

    /// What a step did over the global batch (the same on every rank).
    public struct StepResult: Sendable {
        /// Mean cross-entropy over the global batch, before the update.
        public var loss: Double
        /// Correctly classified samples of the global batch, before the update.
        public var correct: Int
        public var learningRate: Float
    }

    /// Pretraining: a new ResNet of `config.depth` (initialised from `config.seed`) in train mode,
    /// with a one-cycle learning rate peaking at `config.maxLearningRate`.
    /// - totalSteps: length of the learning-rate schedule.
    public convenience init(config: PretrainConfig, data: Dataset, totalSteps: Int, communicator: any Communicator,
                            options: DataParallel.Options = DataParallel.Options()) throws {
        try StartupChecks.verifyGlobalBatch(config.batchSize, ranks: communicator.size)
        let arch = ResNetConfig(depth: config.depth, inChannels: data.channels, classes: data.classes)
        try self.init(model: ResNet(arch, seed: config.seed), mode: .train, config: config, data: data,
                      schedule: OneCycleSchedule(maximum: config.maxLearningRate, totalSteps: totalSteps),
                      communicator: communicator, options: options)
    }

    /// Trains `model` (in place) in `mode`: train (batch statistics), eval or tune (batch norm on
    /// its running statistics; tune is checked with `setModeChecked`). `config.depth` and
    /// `config.maxLearningRate` are not used: the model and `schedule` are given.
    public init(model: ResNet, mode: Mode, config: PretrainConfig, data: Dataset, schedule: any LearningRateSchedule,
                communicator: any Communicator, options: DataParallel.Options = DataParallel.Options()) throws {
        precondition(mode != .deploy, "SupervisedTrainer trains in train, eval or tune mode, not deploy")
        try StartupChecks.verifyGlobalBatch(config.batchSize, ranks: communicator.size)
        try model.setModeChecked(mode)
        self.model = model
        self.mode = mode
        self.config = config
        self.data = data
        arena = ParameterArena(model: model)
        parallel = try DataParallel(model: model, arena: arena, communicator: communicator, options: options)
        optimizer = SGD(arena, momentum: config.momentum, nesterov: config.nesterov, weightDecay: config.weightDecay)
        sampler = EpochSampler(count: data.count, seed: config.seed)
        self.schedule = schedule
    }

    public var stepsPerEpoch: Int { sampler.stepsPerEpoch(batchSize: config.batchSize) }

    /// Global step `step`: forward and backward on this rank's shard, gradient all-reduce, update.
    public func step(_ step: Int) throws -> StepResult {
        let global = sampler.globalBatch(step: step, batchSize: config.batchSize)
        let shard = EpochSampler.shard(of: 0..<global.count, rank: parallel.rank, size: parallel.size)
        let (images, labels) = data.batch(indices: Array(global[shard]), augment: config.augment ? .standard : nil,
                                          seed: config.seed, step: step)
        model.setMode(mode)
        arena.zeroGradients()
        let logits = model(Variable(images))
        let loss = crossEntropy(logits, labels: labels)
        try parallel.backward(loss, localCount: labels.count, globalCount: global.count)
        let lr = schedule.learningRate(atStep: step)
        optimizer.step(learningRate: lr)
        let correct = zip(argmaxRows(logits.value), labels).filter { $0 == $1 }.count
        let sums = try parallel.sum([Double(loss.value.item) * Double(labels.count), Double(correct)])
        return StepResult(loss: sums[0] / Double(global.count), correct: Int(sums[1].rounded()), learningRate: lr)
    }
}
