import Autodiff
import Checkpoint
import Data
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
/// to `output` (and the metrics to `metrics`).
public func pretrain(_ config: PretrainConfig, train fullTrain: Dataset, test: Dataset,
                     output: URL, metrics: MetricsLog, logger: Logger, command: String) throws -> PretrainResult {
    let train = config.trainLimit.map { fullTrain.prefix($0) } ?? fullTrain
    guard train.count >= config.batchSize else {
        throw RunError("the training set has \(train.count) samples, fewer than --batch-size \(config.batchSize)")
    }
    let arch = ResNetConfig(depth: config.depth, inChannels: train.channels, classes: train.classes)
    let model = ResNet(arch, seed: config.seed)
    let arena = ParameterArena(model: model)
    let sgd = SGD(arena, momentum: config.momentum, nesterov: config.nesterov, weightDecay: config.weightDecay)
    let sampler = EpochSampler(count: train.count, seed: config.seed)
    let stepsPerEpoch = sampler.stepsPerEpoch(batchSize: config.batchSize)
    let totalSteps = stepsPerEpoch * config.epochs
    let schedule = OneCycleSchedule(maximum: config.maxLearningRate, totalSteps: totalSteps)
    logger.info("pretrain \(arch.name) on \(train.name): \(train.count) images, \(config.epochs) epochs of \(stepsPerEpoch) steps, batch \(config.batchSize), \(arena.count) parameters")

    let progress = Progress(label: "pretrain", total: totalSteps, logger: logger)
    var metadata = ModelMetadata(role: "teacher", architecture: arch, imageShape: [train.channels, train.height, train.width],
                                 mean: train.mean, std: train.std,
                                 notes: ["command": command, "seed": "\(config.seed)", "dataset": train.name])
    var testAccuracy = 0.0
    var window: (loss: Double, correct: Int, seen: Int) = (0, 0, 0)
    let started = Date()
    for step in 0..<totalSteps {
        let indices = sampler.globalBatch(step: step, batchSize: config.batchSize)
        let (images, labels) = train.batch(indices: indices, augment: config.augment ? .standard : nil,
                                           seed: config.seed, step: step)
        model.setMode(.train)
        arena.zeroGradients()
        let logits = model(Variable(images))
        let loss = crossEntropy(logits, labels: labels)
        loss.backward()
        arena.gatherGradients()
        let lr = schedule.learningRate(atStep: step)
        sgd.step(learningRate: lr)

        let lossValue = Double(loss.value.item)
        guard lossValue.isFinite else {
            throw RunError("training diverged at step \(step): loss is \(lossValue) (try a lower --lr)")
        }
        window.loss += lossValue
        window.correct += zip(argmaxRows(logits.value), labels).filter { $0 == $1 }.count
        window.seen += labels.count
        metrics.write(["step": step, "epoch": step / stepsPerEpoch, "loss": lossValue, "lr": Double(lr)])
        let n = Double(window.seen) / Double(config.batchSize)
        progress.update(step + 1, String(format: "loss %.4f acc %.2f%% lr %.4f", window.loss / n,
                                         100 * Double(window.correct) / Double(window.seen), lr))

        let epochDone = (step + 1) % stepsPerEpoch == 0
        let epoch = (step + 1) / stepsPerEpoch
        if epochDone {
            let trainLoss = window.loss / n, trainAcc = Double(window.correct) / Double(window.seen)
            window = (0, 0, 0)
            if epoch % config.evalEvery == 0 || epoch == config.epochs {
                progress.finish()
                let result = evaluate(model, on: test)
                testAccuracy = result.accuracy
                logger.info("epoch \(epoch)/\(config.epochs): train loss \(String(format: "%.4f", trainLoss)) acc \(String(format: "%.2f", 100 * trainAcc))%, test loss \(String(format: "%.4f", result.loss)) acc \(String(format: "%.2f", 100 * result.accuracy))%")
                metrics.write(["epoch": epoch, "train_loss": trainLoss, "train_accuracy": trainAcc,
                               "test_loss": result.loss, "test_accuracy": result.accuracy,
                               "seconds": Date().timeIntervalSince(started)])
            }
            // Saved every epoch: a run that stops early still leaves its latest model.
            metadata.notes["test_accuracy"] = String(format: "%.4f", testAccuracy)
            metadata.notes["epochs"] = "\(epoch)"
            try ModelFile.save(model, metadata: metadata, to: output)
        }
    }
    progress.finish()
    return PretrainResult(model: model, metadata: metadata, testAccuracy: testAccuracy)
}
