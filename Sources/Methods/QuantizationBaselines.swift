import Autodiff
import Checkpoint
import Data
import Foundation
import Logging
import NN
import Quantization
import TensorCore

// The two quantization baselines that need no generator (issue 4): post-training quantization
// calibrated on Gaussian noise (data-free, the floor), and quantization-aware training on the
// real training set (uses real data: the ceiling a data-free method chases).

/// Gaussian-noise PTQ: activation ranges from `batches` batches of N(0, 1) images in the
/// normalised input space; weights need nothing (their ranges are their own min/max).
public struct NoiseCalibration: Codable, Sendable {
    public var batches = 50
    public var batchSize = 64
    public var seed: UInt64 = 0
    public init() {}
}

/// Calibrates every activation quantizer of `student` on Gaussian noise, then freezes them.
public func calibrateOnGaussianNoise(_ student: QuantizedResNet, imageShape: [Int], _ config: NoiseCalibration) {
    student.calibrate(batches: config.batches) { step in
        gaussianNoiseImages(count: config.batchSize, shape: imageShape, seed: config.seed, step: step)
    }
}

/// Quantization-aware training of a student on a labelled (real) training set. The student keeps
/// eval mode throughout (batch norms on the teacher's running statistics, gamma/beta trained), its
/// activation ranges are first calibrated on real training batches and then frozen, and its loss
/// is GDFQ's student loss on real images and labels: CE + w * T^2 * KL(teacher || student).
public struct QATConfig: Codable, Sendable {
    public var epochs = 1
    public var batchSize = 128
    public var learningRate: Float = 1e-3
    public var momentum: Float = 0.9
    public var nesterov = true
    public var weightDecay: Float = 1e-4
    /// Real training batches that set the activation ranges before training.
    public var calibrationBatches = 50
    public var temperature: Float = 20
    /// Weight of the T^2-scaled, batch-mean KL term; GDFQ's effective weight is 1 / classes
    /// (its KLDivLoss averages over classes too, method.md section 4); nil: that default.
    public var distillationWeight: Float?
    public var augment = true
    public var seed: UInt64 = 0
    /// Train on the first N samples only (quick runs and tests); nil: all.
    public var trainLimit: Int?
    public init() {}
}

/// Runs QAT (see `QATConfig`); returns the mean training loss of the last epoch. With
/// `checkpoints` (identity `RunIdentity.qat`) it resumes and saves as they say: a resumed run
/// skips the calibration (the ranges are in the checkpoint) and continues the uninterrupted
/// run's steps and metrics exactly; a stop asked for by a signal ends it with `RunStopped`.
public func quantizationAwareTraining(_ student: QuantizedResNet, teacher: ResNet, train fullTrain: Dataset,
                                      config: QATConfig, metrics: MetricsLog, logger: Logger,
                                      checkpoints: RunCheckpoints? = nil) throws -> Double {
    let train = try trainingSet(fullTrain, limit: config.trainLimit, batchSize: config.batchSize)
    let sampler = EpochSampler(count: train.count, seed: config.seed)
    func batch(_ step: Int) -> (Tensor, [Int]) {
        train.batch(indices: sampler.globalBatch(step: step, batchSize: config.batchSize),
                    augment: config.augment ? .standard : nil, seed: config.seed, step: step)
    }
    let arena = ParameterArena(model: student)
    let sgd = SGD(arena, momentum: config.momentum, nesterov: config.nesterov, weightDecay: config.weightDecay)
    let stepsPerEpoch = sampler.stepsPerEpoch(batchSize: config.batchSize)
    let totalSteps = stepsPerEpoch * config.epochs
    var loop = QATLoopState()
    if let (state, _) = try checkpoints?.resumeSameKind(template: loop.trainingState(student: student, optimizer: sgd)) {
        let source = checkpoints!.lastSaved!.folder.path
        loop = try QATLoopState.restore(state, student: student, optimizer: sgd, source: source)
        guard loop.step <= totalSteps else {
            throw RunError("checkpoint \(source): step \(loop.step) does not fit this run of \(totalSteps) steps")
        }
    } else {
        logger.info("qat: calibrating activation ranges on \(config.calibrationBatches) real training batches of \(config.batchSize)")
        student.calibrate(batches: config.calibrationBatches) { batch($0).0 }
    }
    try metrics.continue(at: loop.step)

    teacher.setMode(.eval)
    teacher.setRequiresGrad(false)
    student.setMode(.eval)
    let schedule = CosineSchedule(base: config.learningRate, totalSteps: totalSteps)
    let kdWeight = config.distillationWeight ?? 1 / Float(train.classes)
    logger.info("qat \(student.quantization.name) on REAL data \(train.name): \(train.count) images, \(config.epochs) epoch(s) of \(stepsPerEpoch) steps, batch \(config.batchSize), lr \(config.learningRate) cosine, KD weight \(kdWeight) at T \(config.temperature)")
    let progress = Progress(label: "qat", total: totalSteps, logger: logger)
    while loop.step < totalSteps {
        let step = loop.step
        let (images, labels) = batch(config.calibrationBatches + step)
        arena.zeroGradients()
        let target = withoutGradients { teacher(Variable(images)) }
        let logits = student(Variable(images))
        let loss = crossEntropy(logits, labels: labels)
            + kdWeight * distillationLoss(student: logits, teacher: target, temperature: config.temperature)
        loss.backward()
        arena.gatherGradients()
        let lr = schedule.learningRate(atStep: step)
        sgd.step(learningRate: lr)
        let value = Double(loss.value.item)
        guard value.isFinite else { throw RunError("qat diverged at step \(step): loss is \(value) (try a lower --lr)") }
        loop.windowLoss += value
        loop.windowSteps += 1
        metrics.write(["step": step, "loss": value, "lr": Double(lr)])
        progress.update(step + 1, String(format: "loss %.4f lr %.5f", loop.windowLoss / Double(loop.windowSteps), lr))
        loop.step += 1
        if loop.step % stepsPerEpoch == 0 {
            loop.lastEpochLoss = loop.windowLoss / Double(loop.windowSteps)
            (loop.windowLoss, loop.windowSteps) = (0, 0)
        }
        try checkpoints?.afterStep(loop.step, total: totalSteps) { loop.trainingState(student: student, optimizer: sgd) }
    }
    progress.finish()
    return loop.lastEpochLoss
}
