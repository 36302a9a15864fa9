import Autodiff
import Checkpoint
import Data
import Distributed
import Foundation
import Logging
import NN
import TensorCore

/// Fine-tuning a pretrained model on a labelled dataset with frozen batch-norm statistics (the
/// transfer-learning use of Tune mode): every parameter trains (conv weights, BN gamma and beta,
/// the classifier), the running statistics stay the pretrained ones. The conv+BN blocks run in
/// tune mode (one folded convolution per block, half the bytes kept for backward) or eval mode
/// (conv, then BN); both compute the same values and gradients (docs/tune-mode.md).
/// SGD with momentum, a cosine learning rate from `learningRate` to 0, data-parallel as pretraining.
public struct FinetuneConfig: Codable, Sendable {
    /// tune or eval.
    public var convBNMode: Mode = .tune
    public var epochs = 1
    public var batchSize = 128
    public var learningRate: Float = 1e-3
    public var momentum: Float = 0.9
    public var nesterov = true
    public var weightDecay: Float = 1e-4
    /// Seed of the data order and augmentation.
    public var seed: UInt64 = 0
    public var augment = true
    /// Train on the first N samples only (quick runs and tests); nil: all.
    public var trainLimit: Int?
    public var evalEvery = 1

    public init() {}

    /// What `SupervisedTrainer` reads (depth and peak rate are not used: the model and schedule are given).
    var trainer: PretrainConfig {
        var c = PretrainConfig()
        c.epochs = epochs
        c.batchSize = batchSize
        c.maxLearningRate = learningRate
        c.momentum = momentum
        c.nesterov = nesterov
        c.weightDecay = weightDecay
        c.seed = seed
        c.augment = augment
        c.trainLimit = trainLimit
        c.evalEvery = evalEvery
        return c
    }
}

/// Fine-tunes `model` in place (see `FinetuneConfig`), evaluates on `test` after every
/// `evalEvery` epochs and at the end, and saves the model to `output` once fine-tuning is
/// complete, with `metadata` (the pretrained model's, with notes of the fine-tuning). Every rank
/// calls it with the same configuration; rank 0 writes. With `checkpoints` (identity
/// `RunIdentity.finetune`, taken of `model` before this call) it resumes and saves as they say;
/// a run stopped by a signal throws `RunStopped` and writes no `output`.
public func finetune(_ model: ResNet, metadata pretrained: ModelMetadata, _ config: FinetuneConfig,
                     train fullTrain: Dataset, test: Dataset, output: URL, metrics: MetricsLog, logger: Logger,
                     command: String, communicator: any Communicator = SingleProcessCommunicator(),
                     parallel options: DataParallel.Options = DataParallel.Options(),
                     checkpoints: RunCheckpoints? = nil) throws -> PretrainResult {
    guard config.convBNMode == .tune || config.convBNMode == .eval else {
        throw RunError("--convbn-mode must be tune or eval, got \(config.convBNMode.rawValue)")
    }
    let train = try trainingSet(fullTrain, limit: config.trainLimit, batchSize: config.batchSize)
    guard [train.channels, train.height, train.width] == pretrained.imageShape, train.classes == model.config.classes else {
        throw RunError("the model takes \(pretrained.imageShape) images in \(model.config.classes) classes; \(train.name) has [\(train.channels), \(train.height), \(train.width)] in \(train.classes)")
    }
    try StartupChecks.verifySameConfiguration(
        FinetuneJob(config: config, parallel: options, train: DatasetSummary(train), test: DatasetSummary(test)),
        over: communicator)
    let stepsPerEpoch = EpochSampler(count: train.count, seed: config.seed).stepsPerEpoch(batchSize: config.batchSize)
    let totalSteps = stepsPerEpoch * config.epochs
    let trainer: SupervisedTrainer
    do {
        trainer = try SupervisedTrainer(model: model, mode: config.convBNMode, config: config.trainer, data: train,
                                        schedule: CosineSchedule(base: config.learningRate, totalSteps: totalSteps),
                                        communicator: communicator, options: options)
    } catch let error as ConvBNModeError {
        throw RunError("--convbn-mode \(config.convBNMode.rawValue): \(error)")
    }
    let isWriter = communicator.rank == 0
    logger.info("finetune \(model.config.name) on \(train.name) in \(config.convBNMode.rawValue) mode (frozen BN statistics): \(train.count) images, \(config.epochs) epochs of \(stepsPerEpoch) steps, batch \(config.batchSize) over \(communicator.size) rank(s)")
    var metadata = pretrained
    metadata.notes["finetune_command"] = command
    metadata.notes["finetune_convbn_mode"] = config.convBNMode.rawValue
    metadata.notes["finetune_dataset"] = train.name
    let testAccuracy = try runEpochs(trainer, label: "finetune", epochs: config.epochs, evalEvery: config.evalEvery,
                                     test: test, communicator: communicator, metrics: metrics, logger: logger,
                                     checkpoints: checkpoints)
    metadata.notes["test_accuracy"] = String(format: "%.4f", testAccuracy)
    metadata.notes["finetune_epochs"] = "\(config.epochs)"
    if isWriter { try ModelFile.save(model, metadata: metadata, to: output) }
    return PretrainResult(model: model, metadata: metadata, testAccuracy: testAccuracy)
}

/// What every rank of a fine-tuning job must agree on (hashed and compared at the start).
struct FinetuneJob: Codable {
    var config: FinetuneConfig
    var parallel: DataParallel.Options
    var train: DatasetSummary
    var test: DatasetSummary
}
