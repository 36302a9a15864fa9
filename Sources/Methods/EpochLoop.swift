import Data
import Distributed
import Foundation
import Logging
import NN

/// What the epoch loop carries from one step to the next besides the model and the optimizer:
/// a resumed run needs them to write the same per-epoch records as an uninterrupted one.
struct EpochLoopState {
    /// The next global step.
    var step = 0
    /// Sums over the steps of the current epoch so far: loss (a mean per step), correct samples,
    /// samples seen.
    var windowLoss = 0.0
    var windowCorrect = 0
    var windowSeen = 0
    /// The latest test accuracy (0 before the first evaluation).
    var testAccuracy = 0.0
    /// Training time so far, reported in the per-epoch records; a resumed run counts on from it.
    var seconds = 0.0
}

/// The epoch loop that `pretrain` and `finetune` share: every global step of `trainer`, a
/// progress line, one metrics record per step and per epoch, the test accuracy after every
/// `evalEvery` epochs and after the last. With `checkpoints` it resumes where they say (its
/// `metrics` must then have been opened with `resuming:`) and saves as they say; a stop asked
/// for by a signal ends it with `RunStopped` after the save. Returns the last test accuracy.
func runEpochs(_ trainer: SupervisedTrainer, label: String, epochs: Int, evalEvery: Int, test: Dataset,
               communicator: any Communicator, metrics: MetricsLog, logger: Logger,
               checkpoints: RunCheckpoints?) throws -> Double {
    let batchSize = trainer.config.batchSize
    let stepsPerEpoch = trainer.stepsPerEpoch
    let totalSteps = stepsPerEpoch * epochs
    var loop = EpochLoopState()
    if let (state, _) = try checkpoints?.resumeSameKind(template: trainer.trainingState(loop)) {
        let source = checkpoints!.lastSaved!.folder.path
        loop = try trainer.restore(state, source: source)
        guard loop.step <= totalSteps else {
            throw RunError("checkpoint \(source): step \(loop.step) does not fit this run of \(totalSteps) steps")
        }
    }
    try metrics.continue(at: loop.step)
    // Only rank 0 may draw on a terminal; the others log through their (normally quiet) logger.
    let progress = Progress(label: label, total: totalSteps, logger: logger,
                            isTerminal: communicator.rank == 0 && isatty(STDERR_FILENO) != 0)
    let started = Date().addingTimeInterval(-loop.seconds)
    while loop.step < totalSteps {
        let step = loop.step
        let result = try trainer.step(step)
        guard result.loss.isFinite else { throw TrainingDiverged(step: step, loss: result.loss) }
        loop.windowLoss += result.loss
        loop.windowCorrect += result.correct
        loop.windowSeen += batchSize
        metrics.write(["step": step, "epoch": step / stepsPerEpoch, "loss": result.loss, "lr": Double(result.learningRate)])
        let n = Double(loop.windowSeen) / Double(batchSize)
        progress.update(step + 1, String(format: "loss %.4f acc %.2f%% lr %.5f", loop.windowLoss / n,
                                         100 * Double(loop.windowCorrect) / Double(loop.windowSeen), result.learningRate))
        loop.step += 1
        if loop.step % stepsPerEpoch == 0 {
            let epoch = loop.step / stepsPerEpoch
            let trainLoss = loop.windowLoss / n, trainAccuracy = Double(loop.windowCorrect) / Double(loop.windowSeen)
            (loop.windowLoss, loop.windowCorrect, loop.windowSeen) = (0, 0, 0)
            if epoch % evalEvery == 0 || epoch == epochs {
                progress.finish()
                let r = try evaluate(trainer.model, on: test, over: communicator)
                loop.testAccuracy = r.accuracy
                logger.info("epoch \(epoch)/\(epochs): train loss \(String(format: "%.4f", trainLoss)) acc \(String(format: "%.2f", 100 * trainAccuracy))%, test loss \(String(format: "%.4f", r.loss)) acc \(String(format: "%.2f", 100 * r.accuracy))%")
                metrics.write(["epoch": epoch, "train_loss": trainLoss, "train_accuracy": trainAccuracy,
                               "test_loss": r.loss, "test_accuracy": r.accuracy,
                               "seconds": Date().timeIntervalSince(started)])
            }
        }
        try checkpoints?.afterStep(loop.step, total: totalSteps) {
            var saved = loop
            saved.seconds = Date().timeIntervalSince(started)
            return trainer.trainingState(saved)
        }
    }
    progress.finish()
    return loop.testAccuracy
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
