import Autodiff
import Checkpoint
import Data
import Distributed
import Foundation
import Logging
import NN
import TensorCore

/// Supervised training of a full-precision teacher on a labelled dataset: SGD with momentum
/// and a one-cycle learning rate, flip + pad-and-crop augmentation.
public struct PretrainConfig: Codable, Sendable {
    public var depth = 20
    public var epochs = 8
    public var batchSize = 128
    public var maxLearningRate: Float = 0.1
    public var momentum: Float = 0.9
    public var nesterov = true
    public var weightDecay: Float = 5e-4
    public var seed: UInt64 = 0
    public var augment = true
    /// Train on the first N samples only (quick runs and tests); nil: all.
    public var trainLimit: Int?
    public var evalEvery = 1

    public init() {}
}

public struct PretrainResult {
    public var model: ResNet
    public var metadata: ModelMetadata
    public var testAccuracy: Double
}

/// Trains the teacher, evaluates on `test` after every `evalEvery` epochs, and saves the model
/// to `output` once training is complete (and the metrics to `metrics`).
///
/// Runs data-parallel over `communicator`'s ranks: every rank must call it with the same
/// configuration (checked at the start). Rank 0 writes the model; `metrics`, `logger` and the
/// progress of the other ranks are expected to be quiet. With `checkpoints` (identity
/// `RunIdentity.pretrain`) it resumes and saves as they say; a run stopped by a signal throws
/// `RunStopped` and leaves its checkpoint, not a half-trained model at `output`.
public func pretrain(_ config: PretrainConfig, train fullTrain: Dataset, test: Dataset,
                     output: URL, metrics: MetricsLog, logger: Logger, command: String,
                     communicator: any Communicator = SingleProcessCommunicator(),
                     parallel options: DataParallel.Options = DataParallel.Options(),
                     checkpoints: RunCheckpoints? = nil) throws -> PretrainResult {
    let train = try trainingSet(fullTrain, limit: config.trainLimit, batchSize: config.batchSize)
    try StartupChecks.verifySameConfiguration(
        PretrainJob(config: config, parallel: options, train: DatasetSummary(train), test: DatasetSummary(test)),
        over: communicator)
    let stepsPerEpoch = EpochSampler(count: train.count, seed: config.seed).stepsPerEpoch(batchSize: config.batchSize)
    let totalSteps = stepsPerEpoch * config.epochs
    let trainer = try SupervisedTrainer(config: config, data: train, totalSteps: totalSteps,
                                        communicator: communicator, options: options)
    let model = trainer.model
    let arch = model.config
    let isWriter = communicator.rank == 0
    logger.info("pretrain \(arch.name) on \(train.name): \(train.count) images, \(config.epochs) epochs of \(stepsPerEpoch) steps, batch \(config.batchSize) over \(communicator.size) rank(s), \(trainer.arena.count) parameters")

    var metadata = ModelMetadata(role: "teacher", architecture: arch, imageShape: [train.channels, train.height, train.width],
                                 mean: train.mean, std: train.std,
                                 notes: ["command": command, "seed": "\(config.seed)", "dataset": train.name,
                                         "ranks": "\(communicator.size)"])
    let testAccuracy = try runEpochs(trainer, label: "pretrain", epochs: config.epochs, evalEvery: config.evalEvery,
                                     test: test, communicator: communicator, metrics: metrics, logger: logger,
                                     checkpoints: checkpoints)
    // Written once training is complete: a run that stops early leaves its checkpoints instead
    // (`--checkpoint-every` for more of them). The replicas are equal, so rank 0's copy is the model.
    metadata.notes["test_accuracy"] = String(format: "%.4f", testAccuracy)
    metadata.notes["epochs"] = "\(config.epochs)"
    if isWriter { try ModelFile.save(model, metadata: metadata, to: output) }
    return PretrainResult(model: model, metadata: metadata, testAccuracy: testAccuracy)
}

/// What every rank of a pretraining job must agree on (hashed and compared at the start).
struct PretrainJob: Codable {
    var config: PretrainConfig
    var parallel: DataParallel.Options
    var train: DatasetSummary
    var test: DatasetSummary
}

/// Enough of a dataset to notice ranks that loaded different data.
struct DatasetSummary: Codable {
    var name: String
    var count: Int
    /// FNV-1a of the labels: cheap, and differs between different files of the same size.
    var labelHash: UInt64

    init(_ data: Dataset) {
        name = data.name
        count = data.count
        var hash = FNV1a()
        for label in data.labels { hash.add(UInt64(UInt32(bitPattern: label))) }
        labelHash = hash.value
    }
}

/// A non-finite loss. The loss is reduced over the ranks, so every rank throws it at the same
/// step and one report covers the job.
public struct TrainingDiverged: Error, CollectiveFailure, CustomStringConvertible {
    public let step: Int
    public let loss: Double
    public var description: String { "training diverged at step \(step): loss is \(loss) (try a lower --lr)" }
}
