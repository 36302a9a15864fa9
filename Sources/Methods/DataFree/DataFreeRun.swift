import Checkpoint
import Data
import Distributed
import Foundation
import Logging
import NN
import Quantization
import TensorCore

/// What a data-free run reports: the three accuracies of its closing table.
public struct DataFreeResult {
    public var teacherAccuracy: Double
    public var studentBeforeAccuracy: Double
    public var studentAfterAccuracy: Double
}

/// How often a run measures its student while it trains (the accuracy curve of its plot):
/// every `every` fine-tuning steps, on `images` (a slice of the real test set: measurement only).
public struct AccuracyMonitor {
    public var every: Int
    public var images: Dataset
    public init(every: Int, images: Dataset) { (self.every, self.images) = (every, images) }
}

/// A whole data-free quantization run: generator warm-up, activation calibration on generator
/// images, student fine-tuning by distillation with the generator training beside it,
/// evaluation of the student before and after on `test` (real data only measures).
/// Data-parallel over `communicator`; rank 0 writes `folder` (nil on the others).
///
/// Global steps: warm-up steps 0..<W, the calibration block W..<W+C (one unit: it is never cut
/// by a checkpoint), fine-tuning W+C..<W+C+S. With `checkpoints` the run saves as they say and
/// resumes where they say; the continuation is the uninterrupted run's.
public func runDataFree(_ config: DataFreeConfig, teacher: ResNet, metadata: ModelMetadata,
                        quantization: QuantizationConfig, test: Dataset, folder: RunFolder?,
                        metrics: MetricsLog, logger: Logger, command: String,
                        communicator: any Communicator = SingleProcessCommunicator(),
                        parallel options: DataParallel.Options = DataParallel.Options(),
                        checkpoints: RunCheckpoints? = nil, monitor: AccuracyMonitor? = nil) throws -> DataFreeResult {
    guard metadata.imageShape.count == 3, metadata.imageShape[1] == config.imageSize, metadata.imageShape[2] == config.imageSize,
          metadata.imageShape[0] == teacher.config.inChannels else {
        throw RunError("the teacher takes images \(metadata.imageShape), the generator would make \(teacher.config.inChannels)x\(config.imageSize)x\(config.imageSize)")
    }
    let student = try quantize(teacher, config: quantization,
                               inputRange: normalisedPixelRange(mean: metadata.mean, std: metadata.std))
    let trainer = try DataFreeTrainer(config: config, teacher: teacher, student: student,
                                      communicator: communicator, options: options)
    let isWriter = communicator.rank == 0
    logger.info("\(config.method.rawValue) \(quantization.name): batch \(config.batchSize), \(config.warmupSteps) warm-up + \(config.steps) steps, \(trainer.generatorArena.count) generator and \(trainer.studentArena.count) student parameters")

    let (warmupEnd, tuneStart) = (config.warmupSteps, config.warmupSteps + config.calibrationSteps)
    let end = tuneStart + config.steps
    var step = 0
    var measured: [String: Double] = [:]
    if let (state, next) = try checkpoints?.resume(template: trainer.trainingState(nextStep: 0, measured: [:])) {
        let source = checkpoints!.lastSaved!.folder.path
        (step, measured) = try trainer.restore(state, source: source)
        guard step == next, step <= end, step <= warmupEnd || step >= tuneStart else {
            throw RunError("checkpoint \(source): step \(next) does not fit this run of \(end) steps")
        }
    }
    try metrics.continue(at: step)
    if measured["teacher_accuracy"] == nil {
        measured["teacher_accuracy"] = try evaluate(teacher, on: test, over: communicator).accuracy
    }
    let terminal = isWriter && isatty(STDERR_FILENO) != 0
    var progress: Progress?
    while step < end {
        if step < warmupEnd {
            if progress == nil {
                progress = Progress(label: "warm-up (generator only)", total: warmupEnd, logger: logger, isTerminal: terminal)
            }
            let (_, _, terms) = try trainer.generatorStep(step, learningRate: config.generatorLearningRate)
            try checkFinite(terms, step: step)
            metrics.write(["step": step, "phase": "warmup"].merging(terms.mapValues { $0 as Any }) { a, _ in a })
            progress?.update(step + 1, String(format: "generator loss %.4f", terms["generator"] ?? .nan))
            step += 1
        } else if step == warmupEnd {
            progress?.finish()
            progress = nil
            trainer.calibrateStudent(from: step)
            step = tuneStart
            let before = try evaluate(student, on: test, over: communicator).accuracy
            measured["student_before_accuracy"] = before
            metrics.write(["step": step - 1, "phase": "calibration", "student_accuracy": before])
            logger.info("student \(quantization.name) after calibration on generator images: \(String(format: "%.2f", 100 * before))%")
        } else {
            let s = step - tuneStart
            if progress == nil {
                progress = Progress(label: "\(config.method.rawValue) fine-tuning", total: config.steps, logger: logger, isTerminal: terminal)
            }
            let factor = trainer.decay(s)
            let (images, labels, terms) = try trainer.generatorStep(step, learningRate: config.generatorLearningRate * factor)
            let studentLoss = try trainer.studentStep(images: images, labels: labels, learningRate: config.studentLearningRate * factor)
            var record = terms
            record["student"] = studentLoss
            try checkFinite(record, step: step)
            var line: [String: Any] = ["step": step, "phase": "finetune", "lr_factor": Double(factor)]
            line.merge(record.mapValues { $0 as Any }) { a, _ in a }
            if let monitor, (s + 1) % monitor.every == 0, s + 1 < config.steps {
                line["student_accuracy"] = try evaluate(student, on: monitor.images, over: communicator).accuracy
                line["student_accuracy_images"] = monitor.images.count
            }
            metrics.write(line)
            progress?.update(s + 1, String(format: "generator %.4f student %.4f", terms["generator"] ?? .nan, studentLoss))
            step += 1
        }
        try checkpoints?.afterStep(step, total: end) { trainer.trainingState(nextStep: step, measured: measured) }
    }
    progress?.finish()
    let teacherAccuracy = measured["teacher_accuracy"]!
    let before = measured["student_before_accuracy"] ?? .nan
    let after = try evaluate(student, on: test, over: communicator).accuracy
    metrics.write(["step": end, "phase": "final", "teacher_accuracy": teacherAccuracy, "student_before_accuracy": before,
                   "student_after_accuracy": after, "student_accuracy": after])
    var studentMetadata = metadata
    studentMetadata.role = StudentFile.role
    try student.setConvBNMode(config.convBNMode)
    studentMetadata.notes = ["command": command, "method": config.method.rawValue, "quantization": quantization.name,
                             "convbn_mode": config.convBNMode.rawValue,
                             "seed": "\(config.seed)", "test_accuracy": String(format: "%.4f", after),
                             "data": "synthetic (data-free); real test set used only to measure"]
    if let folder {
        let names = teacher.config.classes == FashionMNIST.classNames.count && metadata.imageShape == [1, 28, 28]
            ? FashionMNIST.classNames : nil
        try RunFigures.writeSamples(trainer, metadata: metadata, classNames: names, folder: folder)
        if let url = metrics.url {
            try RunFigures.writePlot(metrics: url, warmupSteps: config.warmupSteps,
                                     title: "\(config.method.rawValue.uppercased()) \(quantization.name): losses and student accuracy",
                                     to: folder.file("plot.png"))
        }
        try StudentFile.save(student, metadata: studentMetadata, to: folder.file("student.safetensors"))
        try ModelFile.save(trainer.generator, metadata: ModelMetadata(role: "generator", architecture: teacher.config,
                                                                   imageShape: metadata.imageShape, mean: metadata.mean,
                                                                   std: metadata.std, notes: ["method": config.method.rawValue, "condition": trainer.generator.config.condition.rawValue, "position_range": "\(config.positionRange)"]),
                           to: folder.file("generator.safetensors"))
    }
    return DataFreeResult(teacherAccuracy: teacherAccuracy, studentBeforeAccuracy: before, studentAfterAccuracy: after)
}

func checkFinite(_ values: [String: Double], step: Int) throws {
    if let (name, value) = values.first(where: { !$0.value.isFinite }) {
        throw RunError("data-free training diverged at step \(step): \(name) loss is \(value) (lower the learning rates)")
    }
}
