import ArgumentParser
import Checkpoint
import Foundation
import Methods
import NN

/// `acq-dist diagnose`: ACQ's two diagnostics (within-class spread of attention centres,
/// eval/train attention gap) of a trained generator's images or of real test images.
struct Diagnose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Within-class attention-centre spread and eval/train attention gap of generator or real images (measurement only).",
        discussion: """
            centre_spread: per class, the RMS distance of the images' attention centres (in [-1, 1]^2) \
            from the class's mean centre; the mean over classes with at least two images.
            attention_gap: mean over images of mean_ij (Â_eval - Â_train)^2 (ACQ's L_cons), Â_train with \
            the batch statistics of each batch of --batch-size images.
            For a generator with ACQ's position condition, also how its images' centres follow the \
            positions p they were asked for: condition_error, the mean of ||c - p||^2 (the \
            attention-centre matching term), and condition_slope, the least-squares slope of c on p \
            (1: the centres move with p; 0: they ignore it).
            """)

    @Option(help: "The teacher (a model file from `acq-dist pretrain`).") var model: String = Eval.shippedTeacher
    @Option(help: "A generator file written by `acq-dist datafree` (<run-dir>/generator.safetensors).") var generator: String?
    @Flag(help: "Use the first --samples real test images and their labels instead of a generator.") var real = false
    @Option(help: "Images to measure (a multiple of --batch-size).") var samples = 1024
    @Option(name: .customLong("batch-size"),
            help: "Images per batch: the generator's batch and the one whose statistics the train-mode pass uses.")
    var batchSize = 64
    @Option(help: "Seed of the generator's noise, labels and positions.") var seed: UInt64 = 0
    @Flag(help: "Print one JSON object (source, samples, centre_spread, attention_gap, and condition_error, condition_slope for a conditioned generator).") var json = false
    @OptionGroup var data: DataOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard (generator != nil) != real else {
            throw ValidationError(real ? "give either --generator FILE or --real, not both"
                                       : "give a source: --generator FILE (from `acq-dist datafree`) or --real")
        }
        guard batchSize >= 2 else { throw ValidationError("--batch-size must be at least 2 (batch statistics), got \(batchSize)") }
        guard samples >= batchSize && samples % batchSize == 0 else {
            throw ValidationError("--samples \(samples) must be a positive multiple of --batch-size \(batchSize): every batch has the same size, since batch statistics depend on it")
        }
    }

    func run() throws {
        let logger = common.setUp(label: "diagnose")
        try ACQDist.reportingErrors {
            let teacherURL = URL(fileURLWithPath: model)
            guard FileManager.default.fileExists(atPath: teacherURL.path) else { throw RunError("teacher file \(model) does not exist") }
            let (teacher, metadata) = try ModelFile.load(teacherURL, expectedRole: "teacher")
            teacher.setMode(.eval)
            let batches = samples / batchSize
            let result: AttentionDiagnostics
            let source: String
            if let generator {
                let url = URL(fileURLWithPath: generator)
                guard FileManager.default.fileExists(atPath: url.path) else { throw RunError("generator file \(generator) does not exist") }
                let trained = try TrainedGenerator(contentsOf: url)
                guard trained.metadata.architecture.classes == teacher.config.classes
                      && trained.metadata.architecture.inChannels == teacher.config.inChannels else {
                    throw RunError("\(generator) was trained for a \(trained.metadata.architecture.classes)-class teacher on \(trained.metadata.architecture.inChannels)-channel images; \(model) has \(teacher.config.classes) classes and \(teacher.config.inChannels) channel(s)")
                }
                if !trained.recordsCondition {
                    let assumed = trained.generator.config.condition.takesPositions
                        ? "a \(trained.generator.config.condition.rawValue) condition (from its tensors), positions from [-\(trained.positionRange), \(trained.positionRange)]^2 (the default range)"
                        : "no position condition (from its tensors)"
                    logger.warning("\(generator) predates runs recording their condition: taking \(assumed)")
                }
                result = try attentionDiagnostics(teacher: teacher, batches: batches, batchSize: batchSize) {
                    trained.batch($0, batchSize: batchSize, seed: seed)
                }
                source = generator
            } else {
                let test = try data.load(.test)
                guard metadata.imageShape == [test.channels, test.height, test.width] else {
                    throw RunError("\(model) takes images \(metadata.imageShape), \(test.name) has [\(test.channels), \(test.height), \(test.width)]")
                }
                guard samples <= test.count else {
                    throw RunError("--samples \(samples) exceeds the \(test.count) images of the \(test.name) test set")
                }
                result = try attentionDiagnostics(teacher: teacher, batches: batches, batchSize: batchSize,
                                                  batch: realDiagnosticBatch(test, batchSize: batchSize))
                source = "real"
            }
            if json {
                var object: [String: Any] = ["source": source, "samples": result.samples,
                                             "centre_spread": result.centreSpread, "attention_gap": result.attentionGap]
                if let fit = result.conditionFit {
                    object["condition_error"] = fit.error
                    object["condition_slope"] = fit.slope
                }
                let line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: line, as: UTF8.self))
            } else {
                print("source \(source): \(result.samples) images in batches of \(result.batchSize), teacher \(model)")
                print(String(format: "  within-class centre spread (RMS, [-1, 1] coordinates)  %.4f", result.centreSpread))
                print(String(format: "  eval/train attention gap (L_cons)                      %.6f", result.attentionGap))
                if let fit = result.conditionFit {
                    print(String(format: "  centre vs asked position: mean ||c - p||^2 (L_ACM)     %.6f", fit.error))
                    print(String(format: "  centre vs asked position: slope of c on p              %.4f", fit.slope))
                }
            }
        }
    }
}
