import ArgumentParser
import Checkpoint
import Data
import Distributed
import Foundation
import Logging
import Methods
import NN
import Quantization

/// What the student is: bit widths, schemes, which layers keep 8 bits.
struct QuantizationOptions: ParsableArguments {
    @Option(name: .customLong("wbits"), help: "Weight bit width, 2 to 8.") var weightBits = 4
    @Option(name: .customLong("abits"), help: "Activation bit width, 2 to 8.") var activationBits = 4
    @Option(name: .customLong("weight-scheme"), help: "Weight ranges: per-channel (per output channel) or per-tensor.")
    var weightGranularity: Granularity = .perChannel
    @Flag(name: .customLong("symmetric-weights"), help: "Symmetric weight quantizer (default: asymmetric).")
    var symmetricWeights = false
    @Flag(name: .customLong("symmetric-activations"), help: "Symmetric activation quantizer (default: asymmetric).")
    var symmetricActivations = false
    @Flag(name: .customLong("first-last-8bit"),
          help: "Keep the first conv and the classifier (weights and its input) at 8 bits.")
    var firstAndLastAt8Bits = false
    @Flag(name: .customLong("quantize-input"),
          help: "Quantize the input image to 8 bits over the normalised pixel range (default: float input).")
    var quantizeInput = false
    @Option(name: .customLong("weight-range"),
            help: "Weight ranges, recomputed at every forward: minmax (per channel min/max, the default) or mse (min/max clipped to the least quantization squared error, per channel).")
    var weightRange: RangeMethod = .minMax
    @Option(name: .customLong("activation-range"),
            help: "Activation ranges, frozen after calibration: minmax (EMA of batch min/max, the default) or mse (the least-squared-error range over every calibration value).")
    var activationRange: RangeMethod = .minMax

    enum Granularity: String, ExpressibleByArgument, CaseIterable {
        case perChannel = "per-channel", perTensor = "per-tensor"
    }

    var config: QuantizationConfig {
        var c = QuantizationConfig(weightBits: weightBits, activationBits: activationBits)
        switch (weightGranularity, symmetricWeights) {
        case (.perChannel, false): c.weightScheme = .perChannelAffine(axis: 0)
        case (.perChannel, true): c.weightScheme = .perChannelSymmetric(axis: 0)
        case (.perTensor, false): c.weightScheme = .perTensorAffine
        case (.perTensor, true): c.weightScheme = .perTensorSymmetric
        }
        c.activationScheme = symmetricActivations ? .perTensorSymmetric : .perTensorAffine
        c.firstAndLastAt8Bits = firstAndLastAt8Bits
        c.quantizeInput = quantizeInput
        (c.weightRange, c.activationRange) = (weightRange, activationRange)
        return c
    }

    func validate() throws {
        do { try config.validate() } catch { throw ValidationError("\(error)") }
    }
}

extension RangeMethod: ExpressibleByArgument {}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a teacher into a student: PTQ on Gaussian noise (data-free) or QAT on REAL data (upper bound).",
        discussion: """
            ptq: activation ranges calibrated on Gaussian-noise images, no training, no data.
            qat: quantization-aware training on the real Fashion-MNIST training set. It uses real \
            training data, so it is not data-free: it is the upper bound that data-free methods chase.
            Both write the student (role "student") and, with --export, its integer model.
            """)

    enum Method: String, ExpressibleByArgument, CaseIterable { case ptq, qat }

    @Option(help: "ptq (Gaussian-noise calibration, data-free) or qat (trains on the REAL training set).")
    var method: Method
    @Option(help: "The full-precision teacher (a file from `acq-dist pretrain`).")
    var teacher: String = Eval.shippedTeacher
    @OptionGroup var quantization: QuantizationOptions
    @Option(name: .customLong("calibration-batches"),
            help: "Batches that set the activation ranges (noise for ptq, real training batches for qat).")
    var calibrationBatches = 50
    @Option(name: .customLong("calibration-batch-size"), help: "Images per Gaussian-noise calibration batch (ptq).")
    var calibrationBatchSize = 64
    @Option(help: "qat: epochs over the training set.") var epochs = 1
    @Option(name: .customLong("batch-size"), help: "qat: batch size.") var batchSize = 128
    @Option(name: .customLong("lr"), help: "qat: initial learning rate (cosine to 0).") var learningRate: Float = 1e-3
    @Option(name: .customLong("kd-weight"), help: "qat: weight of the T^2-scaled KL to the teacher (default 1/classes, GDFQ's).")
    var distillationWeight: Float?
    @Option(name: .customLong("train-limit"), help: "qat: use only the first N training images.") var trainLimit: Int?
    @Option(name: .customLong("test-limit"), help: "Evaluate on the first N test images only (quick runs).")
    var testLimit: Int?
    @Option(help: "Seed of the calibration noise and of qat's data order.") var seed: UInt64 = 0
    @Option(help: "Where to write the student (default: <run-dir>/student.safetensors).") var output: String?
    @Option(help: "Also write the integer model here (role \"integer\"; evaluate with `eval --integer`).")
    var export: String?
    @Option(name: .customLong("run-dir"), help: "Run folder (default: runs/quantize-<method>-<time>).") var runDirectory: String?
    @OptionGroup(title: "Checkpoints (qat)") var checkpoint: CheckpointFlags
    @OptionGroup var data: DataOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard calibrationBatches >= 1 else { throw ValidationError("--calibration-batches must be at least 1, got \(calibrationBatches)") }
        guard calibrationBatchSize >= 1 else { throw ValidationError("--calibration-batch-size must be at least 1, got \(calibrationBatchSize)") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard learningRate > 0 && learningRate.isFinite else { throw ValidationError("--lr must be positive, got \(learningRate)") }
        if let distillationWeight, !(distillationWeight >= 0 && distillationWeight.isFinite) {
            throw ValidationError("--kd-weight must be 0 or more, got \(distillationWeight)")
        }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1, got \(testLimit)") }
        if let trainLimit, trainLimit < batchSize { throw ValidationError("--train-limit \(trainLimit) is below --batch-size \(batchSize)") }
        // ptq is one calibration pass, nothing to checkpoint: refuse rather than ignore.
        if method == .ptq && checkpoint.isUsed {
            throw ValidationError("--checkpoint-every, --keep-checkpoints, --resume and --resume-from apply to --method qat only")
        }
        try checkpoint.validate(runDirectory: runDirectory)
    }

    func run() throws {
        let logger = common.setUp(label: "quantize")
        try ACQDist.reportingErrors {
            let config = quantization.config
            let teacherURL = URL(fileURLWithPath: teacher)
            guard FileManager.default.fileExists(atPath: teacherURL.path) else { throw RunError("teacher file \(teacher) does not exist") }
            let (net, metadata) = try ModelFile.load(teacherURL, expectedRole: "teacher")
            let fullTest = try data.load(.test)
            let test = testLimit.map { fullTest.prefix($0) } ?? fullTest
            guard metadata.imageShape == [test.channels, test.height, test.width] else {
                throw RunError("\(teacher) takes images \(metadata.imageShape), \(test.name) has [\(test.channels), \(test.height), \(test.width)]")
            }
            let folder = try RunFolder(name: "quantize-\(method.rawValue)", explicit: checkpoint.runDirectory(explicit: runDirectory))
            let inputRange = normalisedPixelRange(mean: metadata.mean, std: metadata.std)
            let student = try quantize(net, config: config, inputRange: inputRange)
            let command = ACQDist.commandLine
            var notes = ["command": command, "teacher": teacher, "method": method.rawValue, "quantization": config.name]

            let teacherAccuracy = evaluate(net, on: test).accuracy
            print(String(format: "teacher %@: %.2f%% on %@ (%d images)", teacher, 100 * teacherAccuracy, test.name, test.count))
            let label: String
            switch method {
            case .ptq:
                var calibration = NoiseCalibration()
                (calibration.batches, calibration.batchSize, calibration.seed) = (calibrationBatches, calibrationBatchSize, seed)
                calibrateOnGaussianNoise(student, imageShape: metadata.imageShape, calibration)
                label = "ptq \(config.name) (Gaussian-noise calibration, \(calibrationBatches) batches of \(calibrationBatchSize); data-free)"
                notes["calibration"] = "gaussian noise, \(calibrationBatches) x \(calibrationBatchSize), seed \(seed)"
            case .qat:
                var qat = QATConfig()
                (qat.epochs, qat.batchSize, qat.learningRate, qat.seed) = (epochs, batchSize, learningRate, seed)
                (qat.calibrationBatches, qat.distillationWeight, qat.trainLimit) = (calibrationBatches, distillationWeight, trainLimit)
                let train = try data.load(.train)
                // One process: its checkpoints have one shard. The identity hashes the teacher.
                let checkpoints = RunCheckpoints(directory: folder.file("checkpoints"), options: checkpoint.options,
                                                 run: try RunIdentity.qat(qat, quantization: config, teacher: net, train: train),
                                                 communicator: SingleProcessCommunicator(), logger: logger)
                let metrics = try MetricsLog(url: folder.file("metrics.jsonl"), resuming: checkpoint.options.resume != nil)
                _ = try quantizationAwareTraining(student, teacher: net, train: train, config: qat, metrics: metrics,
                                                  logger: logger, checkpoints: checkpoints)
                let images = trainLimit.map { Swift.min($0, train.count) } ?? train.count
                label = "qat \(config.name) (REAL training data, \(images) images, \(epochs) epoch(s): upper bound, not data-free)"
                notes["training_data"] = "REAL \(train.name), \(images) images, \(epochs) epoch(s), lr \(learningRate)"
            }
            let studentAccuracy = evaluate(student, on: test).accuracy
            print(String(format: "%@: %.2f%% (%+.2f points)", label, 100 * studentAccuracy, 100 * (studentAccuracy - teacherAccuracy)))

            notes["test_accuracy"] = String(format: "%.4f", studentAccuracy)
            notes["teacher_test_accuracy"] = String(format: "%.4f", teacherAccuracy)
            var studentMetadata = metadata
            (studentMetadata.role, studentMetadata.notes) = (StudentFile.role, notes)
            let studentURL = output.map { URL(fileURLWithPath: $0) } ?? folder.file("student.safetensors")
            try FileManager.default.createDirectory(at: studentURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try StudentFile.save(student, metadata: studentMetadata, to: studentURL)
            print("student: \(studentURL.path)")

            if let export {
                let integer = try IntegerResNet(exporting: student, imageShape: metadata.imageShape)
                let exportURL = URL(fileURLWithPath: export)
                try FileManager.default.createDirectory(at: exportURL.deletingLastPathComponent(), withIntermediateDirectories: true)
                var integerMetadata = studentMetadata
                integerMetadata.role = IntegerFile.role
                try IntegerFile.save(integer, metadata: integerMetadata, config: config, to: exportURL)
                let accuracy = evaluate(on: test) { integer.logits($0) }.accuracy
                print(String(format: "integer model %@: %.2f%% (%+.2f points against the fake-quantized student); %@",
                             export, 100 * accuracy, 100 * (accuracy - studentAccuracy),
                             fileSizeComparison(exportURL, teacherURL)))
            }
        }
    }
}

/// "file 140.2 KB, 0.129 of the float model's 1093.0 KB".
func fileSizeComparison(_ file: URL, _ float: URL) -> String {
    func size(_ u: URL) -> Double { Double((try? FileManager.default.attributesOfItem(atPath: u.path)[.size] as? Int) ?? 0) }
    let (a, b) = (size(file), size(float))
    return String(format: "file %.1f KB, %.3f of the float model's %.1f KB", a / 1024, b > 0 ? a / b : 0, b / 1024)
}
