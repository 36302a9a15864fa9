import ArgumentParser
import Checkpoint
import Foundation
import Methods
import NN

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a pretrained model on Fashion-MNIST with frozen BN statistics, conv+BN in tune or eval mode (data-parallel under mpirun).")

    @Option(help: "The pretrained model (a teacher file).") var model: String
    @Option(name: .customLong("convbn-mode"),
            help: "How conv+BN blocks run: tune (BN folded into one conv at every forward, less memory) or eval (conv, then BN). Same values and gradients.")
    var convBNMode = "tune"
    @Option(help: "Epochs over the training set.") var epochs = 1
    @Option(name: .customLong("batch-size"), help: "Global batch size (split over the ranks).") var batchSize = 128
    @Option(name: .customLong("lr"), help: "Initial learning rate (cosine to 0).") var learningRate: Float = 1e-3
    @Option(name: .customLong("weight-decay")) var weightDecay: Float = 1e-4
    @Option(help: "Seed of data order and augmentation.") var seed: UInt64 = 0
    @Flag(name: .customLong("no-augment"), help: "Train without flip and pad-and-crop.") var noAugment = false
    @Option(name: .customLong("train-limit"), help: "Use only the first N training images (quick runs).") var trainLimit: Int?
    @Option(name: .customLong("test-limit"), help: "Evaluate on the first N test images only (quick runs).") var testLimit: Int?
    @Option(help: "Where to write the fine-tuned model (rank 0 writes it).") var output: String = "runs/finetuned.safetensors"
    @Option(name: .customLong("run-dir"), help: "Run folder for metrics.jsonl and checkpoints (default: runs/finetune-<time>).") var runDirectory: String?
    @OptionGroup var checkpoint: CheckpointFlags
    @OptionGroup var data: DataOptions
    @OptionGroup var parallel: ParallelOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard learningRate > 0 && learningRate.isFinite else { throw ValidationError("--lr must be positive, got \(learningRate)") }
        if let trainLimit, trainLimit < batchSize {
            throw ValidationError("--train-limit \(trainLimit) is below --batch-size \(batchSize)")
        }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1, got \(testLimit)") }
        try checkpoint.validate(runDirectory: runDirectory)
    }

    func run() throws {
        let job = Job.start()
        let logger = parallel.logger(common.setUp(label: "finetune"), label: "finetune", job: job)
        try job.run {
            // Checked here, not in validate(), so that a bad value is one line naming the option.
            guard let mode = Mode(rawValue: convBNMode), mode == .tune || mode == .eval else {
                throw RunError("--convbn-mode must be tune or eval, got '\(convBNMode)'")
            }
            var config = FinetuneConfig()
            config.convBNMode = mode
            config.epochs = epochs
            config.batchSize = batchSize
            config.learningRate = learningRate
            config.weightDecay = weightDecay
            config.seed = seed
            config.augment = !noAugment
            config.trainLimit = trainLimit
            let modelURL = URL(fileURLWithPath: model)
            guard FileManager.default.fileExists(atPath: modelURL.path) else { throw RunError("model file \(model) does not exist") }
            let (net, metadata) = try ModelFile.load(modelURL, expectedRole: "teacher")
            let train = try data.load(.train), fullTest = try data.load(.test)
            let test = testLimit.map { fullTest.prefix($0) } ?? fullTest
            let isWriter = job.rank == 0
            // The identity hashes the starting weights, before fine-tuning changes them in place.
            let outputs = try RunOutputs(job: job, name: "finetune", runDirectory: runDirectory, flags: checkpoint,
                                         identity: try RunIdentity.finetune(config, model: net, train: train, test: test),
                                         logger: logger)
            let (folder, checkpoints, metrics) = (outputs.folder, outputs.checkpoints, outputs.metrics)
            let outputURL = URL(fileURLWithPath: output)
            if isWriter {
                try FileManager.default.createDirectory(at: outputURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            }
            let command = ACQDist.commandLine
            let result = try finetune(net, metadata: metadata, config, train: train, test: test, output: outputURL,
                                      metrics: metrics, logger: logger, command: command, communicator: job.communicator,
                                      parallel: parallel.dataParallel, checkpoints: checkpoints)
            if let folder {
                print(String(format: "fine-tuned %@ (%@ mode): test accuracy %.2f%%; metrics in %@", output, mode.rawValue,
                             100 * result.testAccuracy, folder.file("metrics.jsonl").path))
            }
        }
    }
}
