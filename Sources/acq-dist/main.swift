import ArgumentParser
import Checkpoint
import Data
import Foundation
import Logging
import Methods
import NN
import TensorCore

/// Options every command shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Kernel threads in this process (default: all cores; 1 per rank under MPI).")
    var threads: Int?

    @Option(help: "Convolution kernels: auto (AVX-512 where the processor has it), avx512 or blas.")
    var kernels: KernelChoice = .auto

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    enum KernelChoice: String, ExpressibleByArgument, CaseIterable { case auto, avx512, blas }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if kernels == .avx512 && !ConvolutionKernels.processorHasAVX512 {
            throw ValidationError("--kernels avx512: this processor lacks AVX-512 (F, CD, BW, DQ, VL); use auto or blas")
        }
    }

    func setUp(label: String) -> Logger {
        Compute.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        switch kernels {
        case .auto: Compute.convolutionKernels = .detect()
        case .avx512: Compute.convolutionKernels = .avx512
        case .blas: Compute.convolutionKernels = .blas
        }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"),
            help: "Folder with the Fashion-MNIST IDX files (default: where Debian's dataset-fashion-mnist puts them).")
    var dataDirectory: String?

    func load(_ split: Dataset.Split) throws -> Dataset {
        try FashionMNIST.load(split: split, directory: dataDirectory)
    }
}

@main
struct ACQDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acq-dist",
        abstract: "Data-free low-bit quantization (ACQ, GDFQ) on a data-parallel CPU runtime.",
        subcommands: [Eval.self, Pretrain.self, Bench.self],
        defaultSubcommand: Eval.self)

    /// Runs a command body; a failure becomes one line on stderr and exit status 1.
    static func reportingErrors(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("acq-dist: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Test accuracy of a model file on Fashion-MNIST.")
    static let shippedTeacher = "models/resnet20-fashion-mnist.safetensors"

    @Option(help: "The model file (safetensors written by `acq-dist pretrain`).")
    var model: String = Eval.shippedTeacher
    @OptionGroup var data: DataOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        let logger = common.setUp(label: "eval")
        try ACQDist.reportingErrors {
            let url = URL(fileURLWithPath: model)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw RunError("model file \(model) does not exist")
            }
            let (net, metadata) = try ModelFile.load(url, expectedRole: "teacher")
            let test = try data.load(.test)
            guard metadata.imageShape == [test.channels, test.height, test.width] else {
                throw RunError("\(model) takes images \(metadata.imageShape), \(test.name) has [\(test.channels), \(test.height), \(test.width)]")
            }
            let progress = Progress(label: "eval", total: test.count, logger: logger)
            let start = Date()
            let result = evaluate(net, on: test, progress: progress)
            let seconds = Date().timeIntervalSince(start)
            print(String(format: "%@ on %@ test (%d images): accuracy %.2f%%, loss %.4f (%.1f s)",
                         model, test.name, test.count, 100 * result.accuracy, result.loss, seconds))
            logger.debug("recorded accuracy in file: \(metadata.notes["test_accuracy"] ?? "none")")
        }
    }
}

struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train the full-precision teacher on Fashion-MNIST.")

    @Option(help: "ResNet depth: 20, 32, 44 or 56.") var depth = 20
    @Option(help: "Epochs over the training set.") var epochs = 8
    @Option(name: .customLong("batch-size"), help: "Global batch size.") var batchSize = 128
    @Option(name: .customLong("lr"), help: "Peak learning rate of the one-cycle schedule.") var learningRate: Float = 0.1
    @Option(name: .customLong("weight-decay")) var weightDecay: Float = 5e-4
    @Option(help: "Seed of initialisation, data order and augmentation.") var seed: UInt64 = 0
    @Flag(name: .customLong("no-augment"), help: "Train without flip and pad-and-crop.") var noAugment = false
    @Option(name: .customLong("train-limit"), help: "Use only the first N training images (quick runs).") var trainLimit: Int?
    @Option(help: "Where to write the model.") var output: String = "runs/teacher.safetensors"
    @Option(name: .customLong("run-dir"), help: "Run folder for metrics.jsonl (default: runs/pretrain-<time>).") var runDirectory: String?
    @OptionGroup var data: DataOptions
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
    }

    func run() throws {
        let logger = common.setUp(label: "pretrain")
        try ACQDist.reportingErrors {
            var config = PretrainConfig()
            config.depth = depth
            config.epochs = epochs
            config.batchSize = batchSize
            config.maxLearningRate = learningRate
            config.weightDecay = weightDecay
            config.seed = seed
            config.augment = !noAugment
            config.trainLimit = trainLimit
            let train = try data.load(.train), test = try data.load(.test)
            let folder = try RunFolder(name: "pretrain", explicit: runDirectory)
            let metrics = try MetricsLog(url: folder.file("metrics.jsonl"))
            let outputURL = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: outputURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            let command = (["acq-dist"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
            let result = try pretrain(config, train: train, test: test, output: outputURL, metrics: metrics,
                                      logger: logger, command: command)
            print(String(format: "teacher %@: test accuracy %.2f%%; metrics in %@", output,
                         100 * result.testAccuracy, folder.file("metrics.jsonl").path))
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Training-step and inference throughput of ResNet-20, with PyTorch's beside it.")

    @Option(help: "Batch size.") var batch = 128
    @Option(help: "Input shapes to measure, CxHxW, comma-separated.") var inputs = "1x28x28,3x32x32"
    @Option(help: "Timed repeats (the median is reported).") var repeats = 5
    @Option(help: "Steps per timed repeat.") var iterations = 5
    @Option(name: .customLong("torch-ref"),
            help: "Command that prints PyTorch's figures (shared/tools/torch-ref); empty to skip.")
    var torchReference: String = "../shared/tools/torch-ref"
    @OptionGroup var common: CommonOptions

    func run() throws {
        let logger = common.setUp(label: "bench")
        try ACQDist.reportingErrors {
            let shapes = try inputs.split(separator: ",").map { spec -> [Int] in
                let dims = spec.split(separator: "x").compactMap { Int($0) }
                guard dims.count == 3, dims[1] == dims[2], dims.allSatisfy({ $0 > 0 }) else {
                    throw ValidationError("--inputs takes CxHxW with H == W, e.g. 1x28x28; got '\(spec)'")
                }
                return dims
            }
            print("acq-dist bench: ResNet-20, batch \(batch), \(Compute.threads) thread(s), \(Compute.convolutionKernels.rawValue) convolution kernels, median of \(repeats) x \(iterations) steps")
            print("input      what        acq-dist img/s   torch img/s   ratio")
            for shape in shapes {
                var b = ThroughputBenchmark(config: ResNetConfig(depth: 20, inChannels: shape[0], classes: 10),
                                            batch: batch, imageSize: shape[1])
                b.repeats = repeats
                b.iterations = iterations
                let ours = b.run()
                let torch = torchReference.isEmpty ? nil
                    : runTorchReference(torchReference, threads: Compute.threads, batch: batch, input: shape, logger: logger)
                let name = shape.map(String.init).joined(separator: "x")
                for (what, mine, theirs) in [("train step", ours.trainImagesPerSecond, torch?.train),
                                             ("inference", ours.inferenceImagesPerSecond, torch?.inference)] {
                    let m = median(mine)
                    let t = theirs.map { String(format: "%11.1f", $0) } ?? "          -"
                    let r = theirs.map { String(format: "%6.2fx", m / $0) } ?? "      -"
                    print(String(format: "%-10@ %-11@ %14.1f   %@   %@", name, what, m, t, r))
                }
            }
        }
    }
}

/// Runs the PyTorch reference `repeats`... once per call; returns its images/s (train, inference).
func runTorchReference(_ command: String, threads: Int, batch: Int, input: [Int], logger: Logger)
    -> (train: Double, inference: Double)? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    let shape = input.map(String.init).joined(separator: "x")
    p.arguments = ["-c", "\(command) --threads \(threads) --batch \(batch) --input \(shape)"]
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch {
        logger.warning("PyTorch reference '\(command)' did not start: \(error)")
        return nil
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    func figure(_ key: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
              let r = line.range(of: "images/s ") else { return nil }
        return Double(line[r.upperBound...].trimmingCharacters(in: .whitespaces))
    }
    guard p.terminationStatus == 0, let t = figure("train_step_s"), let i = figure("eval_forward_s") else {
        logger.warning("PyTorch reference '\(command)' failed (status \(p.terminationStatus)); showing acq-dist alone")
        return nil
    }
    return (t, i)
}
