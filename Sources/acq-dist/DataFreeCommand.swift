import ArgumentParser
import Checkpoint
import Distributed
import Foundation
import Methods
import NN
import Quantization
import Safetensors
import ShardedCheckpoint

/// `acq-dist datafree`: GDFQ or ACQ on the shipped teacher, data-parallel under mpirun.
struct DataFree: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datafree",
        abstract: "Data-free quantization (GDFQ or ACQ): a generator against the frozen teacher, a student distilled on its images.")

    @Option(help: "gdfq or acq.") var method: DataFreeMethod = .acq
    @Option(help: "The teacher (a model file from `acq-dist pretrain`).") var model: String = Eval.shippedTeacher
    @OptionGroup var quantization: QuantizationOptions
    @Option(help: "quick (a smoke run, about a minute), default (the main job: under 10 minutes on 2 cores) or long (the best result). Options given explicitly override it.")
    var preset: DataFreePreset = .default
    @Option(name: .customLong("batch-size"), help: "Global synthetic batch (even: pairs share label and position). Preset: 64.") var batchSizeOption: Int?
    @Option(help: "Student fine-tuning steps. Preset: 60 / 400 / 2000.") var steps: Int?
    @Option(name: .customLong("warmup-steps"), help: "Generator-only steps first. Preset: 40 / 200 / 400.") var warmupSteps: Int?
    @Option(name: .customLong("calibration-steps"), help: "Generator batches that set the activation ranges. Preset: 20.") var calibrationSteps: Int?
    @Option(name: .customLong("generator-lr"), help: "Preset: 1e-3.") var generatorLearningRate: Float?
    @Option(name: .customLong("student-lr"), help: "Preset: see docs/acq.md.") var studentLearningRate: Float?
    @Option(name: .customLong("student-ce-weight"),
            help: "Weight of the student's cross-entropy on the generator's labels beside the distillation loss (0: distillation only).")
    var studentCEWeight: Float = 1
    @Option(name: .customLong("bns-weight")) var bnsWeight: Float = GDFQObjective().bnsWeight
    @Option(name: .customLong("acm-weight"), help: "ACQ attention-centre matching weight (0: off).") var acmWeight: Float = ACQObjective().acmWeight
    @Option(name: .customLong("pair-weight"), help: "ACQ paired-loss weight (0: off).") var pairWeight: Float = ACQObjective().pairWeight
    @Option(name: .customLong("cons-weight"), help: "ACQ eval/train consistency weight (0: off).") var consistencyWeight: Float = ACQObjective().consistencyWeight
    @Option(help: "How ACQ's generator takes the position: heatmap (a Gaussian bump channel, the default) or embedding (z * E(y) * (1 + MLP(p))).")
    var condition: Condition = .heatmap
    @Flag(name: .customLong("no-condition"), help: "ACQ without the position condition (and without attention-centre matching).") var noCondition = false
    @Option(name: .customLong("position-range"), help: "Positions are drawn from [-r, r]^2, r in (0, 1].") var positionRange: Float = DataFreeConfig().positionRange
    @Option(help: "Seed of every random draw.") var seed: UInt64 = 0
    @Option(name: .customLong("convbn-mode"), help: "How the student's conv+BN blocks train: tune (BN folded, default) or eval.")
    var convBNMode: String = "tune"
    @Option(name: .customLong("run-dir"), help: "Run folder (default: runs/<method>-<time>).") var runDirectory: String?
    @Option(name: .customLong("test-limit"), help: "Measure accuracy on the first N test images only (quick runs).") var testLimit: Int?
    @Option(name: .customLong("monitor-every"), help: "Measure the student every N fine-tuning steps on --monitor-images test images (0: only before and after). Preset: 20 / 50 / 200.")
    var monitorEveryOption: Int?
    @Option(name: .customLong("monitor-images"), help: "Test images of each measurement during fine-tuning.") var monitorImages = 2000
    @OptionGroup var checkpoint: CheckpointFlags
    @OptionGroup var data: DataOptions
    @OptionGroup var parallel: ParallelOptions
    @OptionGroup var common: CommonOptions

    var settings: DataFreePreset.Settings { preset.settings }
    var batchSize: Int { batchSizeOption ?? settings.batchSize }
    var monitorEvery: Int { monitorEveryOption ?? settings.monitorEvery }

    func validate() throws {
        guard batchSize >= 2 && batchSize % 2 == 0 else {
            throw ValidationError("--batch-size must be even and at least 2 (pairs share label and position), got \(batchSize)")
        }
        if noCondition && condition != .heatmap {
            throw ValidationError("--no-condition and --condition \(condition.rawValue) contradict each other: give one")
        }
        guard positionRange > 0 && positionRange <= 1 else {
            throw ValidationError("--position-range must be in (0, 1] (positions live in [-1, 1]), got \(positionRange)")
        }
        for (name, v) in [("--steps", steps), ("--calibration-steps", calibrationSteps)] where (v ?? 1) < 1 {
            throw ValidationError("\(name) must be at least 1, got \(v!)")
        }
        if let warmupSteps, warmupSteps < 0 { throw ValidationError("--warmup-steps must be at least 0, got \(warmupSteps)") }
        for (name, v) in [("--generator-lr", generatorLearningRate), ("--student-lr", studentLearningRate)] {
            if let v, !(v > 0 && v.isFinite) { throw ValidationError("\(name) must be a positive number, got \(v)") }
        }
        guard convBNMode == "tune" || convBNMode == "eval" else {
            throw ValidationError("--convbn-mode must be tune or eval, got '\(convBNMode)'")
        }
        guard studentCEWeight >= 0 && studentCEWeight.isFinite else {
            throw ValidationError("--student-ce-weight must be 0 or more, got \(studentCEWeight)")
        }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1, got \(testLimit)") }
        guard monitorEvery >= 0 else { throw ValidationError("--monitor-every must be at least 0, got \(monitorEvery)") }
        guard monitorImages >= 1 else { throw ValidationError("--monitor-images must be at least 1, got \(monitorImages)") }
        try checkpoint.validate(runDirectory: runDirectory)
    }

    func run() throws {
        let job = Job.start()
        let logger = parallel.logger(common.setUp(label: "datafree"), label: "datafree", job: job)
        try job.run {
            var config = DataFreeConfig()
            config.method = method
            config.batchSize = batchSize
            config.steps = steps ?? settings.steps
            config.warmupSteps = warmupSteps ?? settings.warmupSteps
            config.calibrationSteps = calibrationSteps ?? settings.calibrationSteps
            config.generatorLearningRate = generatorLearningRate ?? settings.generatorLearningRate
            config.studentLearningRate = studentLearningRate ?? settings.studentLearningRate
            config.studentCEWeight = studentCEWeight
            config.positionRange = positionRange
            config.seed = seed
            config.convBNMode = convBNMode == "tune" ? .tune : .eval
            config.gdfq.bnsWeight = bnsWeight
            config.acq.bnsWeight = bnsWeight
            config.acq.acmWeight = noCondition ? 0 : acmWeight
            config.acq.pairWeight = pairWeight
            config.acq.consistencyWeight = consistencyWeight
            config.acq.condition = noCondition ? .none : condition.positionCondition
            let q = quantization.config
            try q.validate()
            let teacherURL = URL(fileURLWithPath: model)
            guard FileManager.default.fileExists(atPath: teacherURL.path) else { throw RunError("teacher file \(model) does not exist") }
            // The BNS loss matches the teacher's batch-norm statistics: a file without them (BN
            // folded into the convolutions) cannot be a data-free teacher, whatever else it holds.
            let names = try SafetensorsFile.read(contentsOf: teacherURL).names
            guard names.contains(where: { $0.hasSuffix("running_mean") }) else {
                throw RunError("\(model): the teacher has no batch-norm statistics (no running_mean tensors), which the BNS loss matches; use a model with its BatchNorm layers, not one with BN folded away")
            }
            let (teacher, metadata) = try ModelFile.load(teacherURL, expectedRole: "teacher")
            config.imageSize = metadata.imageShape.last ?? config.imageSize
            let fullTest = try data.load(.test)
            let test = testLimit.map { fullTest.prefix($0) } ?? fullTest
            // Rank 0 writes the run folder; the replicas are equal.
            let outputs = try RunOutputs(job: job, name: method.rawValue, runDirectory: runDirectory, flags: checkpoint,
                                         identity: try DataFreeTrainer.runIdentity(config: config, teacher: teacher, quantization: q.name),
                                         logger: logger)
            let (folder, checkpoints, metrics) = (outputs.folder, outputs.checkpoints, outputs.metrics)
            let command = ACQDist.commandLine
            let monitor = monitorEvery > 0 ? AccuracyMonitor(every: monitorEvery, images: test.prefix(min(monitorImages, test.count))) : nil
            let result = try runDataFree(config, teacher: teacher, metadata: metadata, quantization: q, test: test,
                                         folder: folder, metrics: metrics, logger: logger, command: command,
                                         communicator: job.communicator, parallel: parallel.dataParallel,
                                         checkpoints: checkpoints, monitor: monitor)
            guard let folder else { return }
            print("\(method.rawValue) \(q.name), preset \(preset.rawValue): \(config.warmupSteps) warm-up + \(config.steps) steps, batch \(batchSize) over \(job.size) rank(s), seed \(seed) (test accuracy on \(test.count) real images)")
            print(String(format: "  teacher                       %6.2f %%", 100 * result.teacherAccuracy))
            print(String(format: "  student before fine-tuning    %6.2f %%", 100 * result.studentBeforeAccuracy))
            print(String(format: "  student after fine-tuning     %6.2f %%", 100 * result.studentAfterAccuracy))
            print("  in \(folder.url.path): student.safetensors, generator.safetensors, metrics.jsonl, plot.png, samples.png, samples/, checkpoints/")
        }
    }
}

extension DataFreeMethod: ExpressibleByArgument {}

/// The conditions `--condition` offers (`--no-condition` is the third, `PositionCondition.none`).
enum Condition: String, ExpressibleByArgument, CaseIterable {
    case heatmap, embedding
    var positionCondition: PositionCondition { self == .heatmap ? .heatMap : .embedding }
}

/// The step counts and rates of `acq-dist datafree` (and of `acq-dist` with no arguments).
enum DataFreePreset: String, ExpressibleByArgument, CaseIterable {
    case quick, `default`, long

    struct Settings {
        var batchSize = 64
        var warmupSteps: Int
        var calibrationSteps = 20
        var steps: Int
        var generatorLearningRate: Float = 1e-3
        var studentLearningRate: Float
        var monitorEvery: Int
    }

    var settings: Settings {
        switch self {
        case .quick: return Settings(warmupSteps: 40, steps: 60, studentLearningRate: DataFreePreset.studentLearningRate, monitorEvery: 20)
        case .default: return Settings(warmupSteps: 200, steps: 400, studentLearningRate: DataFreePreset.studentLearningRate, monitorEvery: 50)
        case .long: return Settings(warmupSteps: 400, steps: 2000, studentLearningRate: DataFreePreset.studentLearningRate, monitorEvery: 200)
        }
    }

    /// The student's rate, from the sweep in docs/acq.md.
    static let studentLearningRate: Float = 1e-4
}

/// `acq-dist methods`: the data-free methods and what they optimise.
struct Methods: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the data-free methods and each one's own options (`acq-dist help datafree` has the shared ones).")

    /// Each method's own options of `acq-dist datafree`, with their defaults.
    static func options(of method: DataFreeMethod) -> [(String, String)] {
        let defaults = ACQObjective()
        let gdfq = [("--bns-weight W", "weight of BNS, the teacher's batch-norm statistics (default \(GDFQObjective().bnsWeight))")]
        switch method {
        case .gdfq: return gdfq
        case .acq:
            return gdfq + [
                ("--acm-weight W", "attention-centre matching (default \(defaults.acmWeight); 0: off)"),
                ("--pair-weight W", "paired mode-seeking loss (default \(defaults.pairWeight); 0: off)"),
                ("--cons-weight W", "eval/train attention consistency (default \(defaults.consistencyWeight); 0: off)"),
                ("--condition C", "heatmap (default) or embedding: how the generator takes the position"),
                ("--no-condition", "no position condition, no attention-centre matching"),
                ("--position-range R", "positions from [-R, R]^2 (default \(DataFreeConfig().positionRange))"),
            ]
        }
    }

    func run() {
        for m in DataFreeMethod.allCases {
            print("\(m.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(m.summary)")
            for (flag, help) in Methods.options(of: m) { print("         \(flag.padding(toLength: 20, withPad: " ", startingAt: 0)) \(help)") }
        }
    }
}
