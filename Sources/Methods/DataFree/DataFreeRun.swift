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

/// A whole data-free quantization run on one process: generator warm-up, activation calibration
/// on generator images, student fine-tuning by distillation with the generator training beside
/// it, evaluation of the student before and after on `test` (real data only measures).
/// Data-parallel over `communicator`; rank 0 writes `folder` (nil on the others).
public func runDataFree(_ config: DataFreeConfig, teacher: ResNet, metadata: ModelMetadata,
                        quantization: QuantizationConfig, test: Dataset, folder: RunFolder?,
                        metrics: MetricsLog, logger: Logger, command: String,
                        communicator: any Communicator = SingleProcessCommunicator(),
                        parallel options: DataParallel.Options = DataParallel.Options()) throws -> DataFreeResult {
    let student = try quantize(teacher, config: quantization,
                               inputRange: normalisedPixelRange(mean: metadata.mean, std: metadata.std))
    let trainer = try DataFreeTrainer(config: config, teacher: teacher, student: student,
                                      communicator: communicator, options: options)
    let isWriter = communicator.rank == 0
    logger.info("\(config.method.rawValue) \(quantization.name): batch \(config.batchSize), \(config.warmupSteps) warm-up + \(config.steps) steps, \(trainer.generatorArena.count) generator and \(trainer.studentArena.count) student parameters")

    let teacherAccuracy = try evaluate(teacher, on: test, over: communicator).accuracy
    var step = 0
    let terminal = isWriter && isatty(STDERR_FILENO) != 0
    let warmup = Progress(label: "warm-up (generator only)", total: config.warmupSteps, logger: logger, isTerminal: terminal)
    for s in 0..<config.warmupSteps {
        let (_, _, terms) = try trainer.generatorStep(step, learningRate: config.generatorLearningRate)
        try checkFinite(terms, step: step)
        metrics.write(["step": step, "phase": "warmup"].merging(terms.mapValues { $0 as Any }) { a, _ in a })
        warmup.update(s + 1, String(format: "generator loss %.4f", terms["generator"] ?? .nan))
        step += 1
    }
    warmup.finish()
    trainer.calibrateStudent(from: step)
    step += config.calibrationSteps
    let before = try evaluate(student, on: test, over: communicator).accuracy
    logger.info("student \(quantization.name) after calibration on generator images: \(String(format: "%.2f", 100 * before))%")

    let progress = Progress(label: "\(config.method.rawValue) fine-tuning", total: config.steps, logger: logger, isTerminal: terminal)
    for s in 0..<config.steps {
        let factor = trainer.decay(s)
        let (images, labels, terms) = try trainer.generatorStep(step, learningRate: config.generatorLearningRate * factor)
        let studentLoss = try trainer.studentStep(images: images, labels: labels, learningRate: config.studentLearningRate * factor)
        var record = terms
        record["student"] = studentLoss
        try checkFinite(record, step: step)
        metrics.write(["step": step, "phase": "finetune", "lr_factor": Double(factor)].merging(record.mapValues { $0 as Any }) { a, _ in a })
        progress.update(s + 1, String(format: "generator %.4f student %.4f", terms["generator"] ?? .nan, studentLoss))
        step += 1
    }
    progress.finish()
    let after = try evaluate(student, on: test, over: communicator).accuracy
    metrics.write(["teacher_accuracy": teacherAccuracy, "student_before_accuracy": before, "student_after_accuracy": after])
    var studentMetadata = metadata
    studentMetadata.role = StudentFile.role
    try student.setConvBNMode(config.convBNMode)
    studentMetadata.notes = ["command": command, "method": config.method.rawValue, "quantization": quantization.name,
                             "convbn_mode": config.convBNMode.rawValue,
                             "seed": "\(config.seed)", "test_accuracy": String(format: "%.4f", after),
                             "data": "synthetic (data-free); real test set used only to measure"]
    if let folder {
        try StudentFile.save(student, metadata: studentMetadata, to: folder.file("student.safetensors"))
        try ModelFile.save(trainer.generator, metadata: ModelMetadata(role: "generator", architecture: teacher.config,
                                                                   imageShape: metadata.imageShape, mean: metadata.mean,
                                                                   std: metadata.std, notes: ["method": config.method.rawValue]),
                           to: folder.file("generator.safetensors"))
    }
    return DataFreeResult(teacherAccuracy: teacherAccuracy, studentBeforeAccuracy: before, studentAfterAccuracy: after)
}

func checkFinite(_ values: [String: Double], step: Int) throws {
    if let (name, value) = values.first(where: { !$0.value.isFinite }) {
        throw RunError("data-free training diverged at step \(step): \(name) loss is \(value) (lower the learning rates)")
    }
}
