import ArgumentParser
import Foundation
import Methods
import NN

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the full-precision teacher on Fashion-MNIST (data-parallel under mpirun).")

    @Option(help: "ResNet depth: 20, 32, 44 or 56.") var depth = 20
    @Option(help: "Epochs over the training set.") var epochs = 8
    @Option(name: .customLong("batch-size"), help: "Global batch size (split over the ranks).") var batchSize = 128
    @Option(name: .customLong("lr"), help: "Peak learning rate of the one-cycle schedule.") var learningRate: Float = 0.1
    @Option(name: .customLong("weight-decay")) var weightDecay: Float = 5e-4
    @Option(help: "Seed of initialisation, data order and augmentation.") var seed: UInt64 = 0
    @Flag(name: .customLong("no-augment"), help: "Train without flip and pad-and-crop.") var noAugment = false
    @Option(name: .customLong("train-limit"), help: "Use only the first N training images (quick runs).") var trainLimit: Int?
    @Option(name: .customLong("test-limit"), help: "Evaluate on the first N test images only (quick runs).") var testLimit: Int?
    @Option(help: "Where to write the model (rank 0 writes it).") var output: String = "runs/teacher.safetensors"
    @Option(name: .customLong("run-dir"), help: "Run folder for metrics.jsonl and checkpoints (default: runs/pretrain-<time>).") var runDirectory: String?
    @OptionGroup var checkpoint: CheckpointFlags
    @OptionGroup var data: DataOptions
    @OptionGroup var parallel: ParallelOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard ResNetConfig.supportedDepths.contains(depth) else {
            throw ValidationError("--depth must be one of \(ResNetConfig.supportedDepths.map(String.init).joined(separator: ", ")), got \(depth)")
        }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard batchSize >= 2 else { throw ValidationError("--batch-size must be at least 2 (batch norm needs it), got \(batchSize)") }
        guard learningRate > 0 && learningRate.isFinite else { throw ValidationError("--lr must be positive, got \(learningRate)") }
        if let trainLimit, trainLimit < batchSize {
            throw ValidationError("--train-limit \(trainLimit) is below --batch-size \(batchSize)")
        }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1, got \(testLimit)") }
        try checkpoint.validate(runDirectory: runDirectory)
    }

    func run() throws {
        let job = Job.start()
        let logger = parallel.logger(common.setUp(label: "pretrain"), label: "pretrain", job: job)
        try job.run {
            var config = PretrainConfig()
            config.depth = depth
            config.epochs = epochs
            config.batchSize = batchSize
            config.maxLearningRate = learningRate
            config.weightDecay = weightDecay
            config.seed = seed
            config.augment = !noAugment
            config.trainLimit = trainLimit
            let train = try data.load(.train), fullTest = try data.load(.test)
            let test = testLimit.map { fullTest.prefix($0) } ?? fullTest
            // Rank 0 writes the run folder, the metrics and the model; the replicas are equal.
            let isWriter = job.rank == 0
            let outputs = try RunOutputs(job: job, name: "pretrain", runDirectory: runDirectory, flags: checkpoint,
                                         identity: try RunIdentity.pretrain(config, train: train, test: test), logger: logger)
            let (folder, checkpoints, metrics) = (outputs.folder, outputs.checkpoints, outputs.metrics)
            let outputURL = URL(fileURLWithPath: output)
            if isWriter {
                try FileManager.default.createDirectory(at: outputURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            }
            let command = ACQDist.commandLine
            let result = try pretrain(config, train: train, test: test, output: outputURL, metrics: metrics,
                                      logger: logger, command: command, communicator: job.communicator,
                                      parallel: parallel.dataParallel, checkpoints: checkpoints)
            if let folder {
                print(String(format: "teacher %@: test accuracy %.2f%%; metrics in %@", output,
                             100 * result.testAccuracy, folder.file("metrics.jsonl").path))
            }
        }
    }
}
