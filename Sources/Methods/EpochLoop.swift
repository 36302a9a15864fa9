import Data
import Distributed
import Foundation
import Logging
import NN

/// The epoch loop that `pretrain` and `finetune` share: every global step of `trainer`, a
/// progress line, one metrics record per step and per epoch, the test accuracy after every
/// `evalEvery` epochs and after the last, and `endOfEpoch(epoch, latest test accuracy)` after
/// each epoch (where the caller saves). Returns the last test accuracy.
func runEpochs(_ trainer: SupervisedTrainer, label: String, epochs: Int, evalEvery: Int, test: Dataset,
               communicator: any Communicator, metrics: MetricsLog, logger: Logger,
               endOfEpoch: (Int, Double) throws -> Void) throws -> Double {
    let batchSize = trainer.config.batchSize
    let stepsPerEpoch = trainer.stepsPerEpoch
    let totalSteps = stepsPerEpoch * epochs
    // Only rank 0 may draw on a terminal; the others log through their (normally quiet) logger.
    let progress = Progress(label: label, total: totalSteps, logger: logger,
                            isTerminal: communicator.rank == 0 && isatty(STDERR_FILENO) != 0)
    var testAccuracy = 0.0
    var window: (loss: Double, correct: Int, seen: Int) = (0, 0, 0)
    let started = Date()
    for step in 0..<totalSteps {
        let result = try trainer.step(step)
        guard result.loss.isFinite else { throw TrainingDiverged(step: step, loss: result.loss) }
        window.loss += result.loss
        window.correct += result.correct
        window.seen += batchSize
        metrics.write(["step": step, "epoch": step / stepsPerEpoch, "loss": result.loss, "lr": Double(result.learningRate)])
        let n = Double(window.seen) / Double(batchSize)
        progress.update(step + 1, String(format: "loss %.4f acc %.2f%% lr %.5f", window.loss / n,
                                         100 * Double(window.correct) / Double(window.seen), result.learningRate))
        guard (step + 1) % stepsPerEpoch == 0 else { continue }
        let epoch = (step + 1) / stepsPerEpoch
        let trainLoss = window.loss / n, trainAccuracy = Double(window.correct) / Double(window.seen)
        window = (0, 0, 0)
        if epoch % evalEvery == 0 || epoch == epochs {
            progress.finish()
            let r = try evaluate(trainer.model, on: test, over: communicator)
            testAccuracy = r.accuracy
            logger.info("epoch \(epoch)/\(epochs): train loss \(String(format: "%.4f", trainLoss)) acc \(String(format: "%.2f", 100 * trainAccuracy))%, test loss \(String(format: "%.4f", r.loss)) acc \(String(format: "%.2f", 100 * r.accuracy))%")
            metrics.write(["epoch": epoch, "train_loss": trainLoss, "train_accuracy": trainAccuracy,
                           "test_loss": r.loss, "test_accuracy": r.accuracy,
                           "seconds": Date().timeIntervalSince(started)])
        }
        try endOfEpoch(epoch, testAccuracy)
    }
    progress.finish()
    return testAccuracy
}

/// The training set of a run: the first `limit` samples when given, refused when it cannot fill
/// one batch.
func trainingSet(_ full: Dataset, limit: Int?, batchSize: Int) throws -> Dataset {
    let train = limit.map { full.prefix($0) } ?? full
    guard train.count >= batchSize else {
        throw RunError("the training set has \(train.count) samples, fewer than --batch-size \(batchSize)")
    }
    return train
}
