import Data
import Distributed
import Foundation
import NN
import Quantization
import ShardedCheckpoint
import TensorCore

/// What the checkpoints of `pretrain`, `finetune` and `quantize --method qat` hold and which run
/// they belong to. The data order and augmentation are counter-based on (seed, step, sample) and
/// the learning rate is a function of the step, so the next step is their whole position.
///
/// - pretrain and finetune: `model.*` (parameters and buffers: running statistics,
///   num_batches_tracked), `optimizer.model.*` (SGD), `progress.*` (the epoch loop's carried
///   values, `EpochLoopState`).
/// - QAT: `student.*` (its observers' ranges are buffers, so they need no calibration after a
///   resume), `optimizer.student.*`, `progress.*` (`QATLoopState`).
extension SupervisedTrainer {
    func trainingState(_ loop: EpochLoopState) -> TrainingState {
        var state = TrainingState()
        state.append("model", model.namedState().map { ($0.0, $0.1.value) })
        state.append("optimizer.model", optimizer.state)
        state.append("progress.next_step", scalar: Double(loop.step))
        state.append("progress.window_loss", scalar: loop.windowLoss)
        state.append("progress.window_correct", scalar: Double(loop.windowCorrect))
        state.append("progress.window_seen", scalar: Double(loop.windowSeen))
        state.append("progress.test_accuracy", scalar: loop.testAccuracy)
        state.append("progress.seconds", scalar: loop.seconds)
        return state
    }

    /// Restores a state of `trainingState`'s layout; returns the loop's position and values.
    func restore(_ state: TrainingState, source: String) throws -> EpochLoopState {
        try restoreState(of: model, from: state, prefix: "model", source: source)
        try optimizer.loadState(state.group("optimizer.model"))
        var loop = EpochLoopState()
        loop.step = Int(try state.scalar("progress.next_step", in: source))
        loop.windowLoss = try state.scalar("progress.window_loss", in: source)
        loop.windowCorrect = Int(try state.scalar("progress.window_correct", in: source))
        loop.windowSeen = Int(try state.scalar("progress.window_seen", in: source))
        loop.testAccuracy = try state.scalar("progress.test_accuracy", in: source)
        loop.seconds = try state.scalar("progress.seconds", in: source)
        return loop
    }
}

/// What QAT's loop carries from one step to the next besides the student and the optimizer.
struct QATLoopState {
    var step = 0
    /// Sum of the losses and number of steps of the current epoch.
    var windowLoss = 0.0
    var windowSteps = 0
    /// Mean loss of the last finished epoch (what `quantizationAwareTraining` returns).
    var lastEpochLoss = 0.0

    func trainingState(student: QuantizedResNet, optimizer: SGD) -> TrainingState {
        var state = TrainingState()
        state.append("student", student.namedState().map { ($0.0, $0.1.value) })
        state.append("optimizer.student", optimizer.state)
        state.append("progress.next_step", scalar: Double(step))
        state.append("progress.window_loss", scalar: windowLoss)
        state.append("progress.window_steps", scalar: Double(windowSteps))
        state.append("progress.last_epoch_loss", scalar: lastEpochLoss)
        return state
    }

    static func restore(_ state: TrainingState, student: QuantizedResNet, optimizer: SGD, source: String) throws -> QATLoopState {
        try restoreState(of: student, from: state, prefix: "student", source: source)
        try optimizer.loadState(state.group("optimizer.student"))
        var loop = QATLoopState()
        loop.step = Int(try state.scalar("progress.next_step", in: source))
        loop.windowLoss = try state.scalar("progress.window_loss", in: source)
        loop.windowSteps = Int(try state.scalar("progress.window_steps", in: source))
        loop.lastEpochLoss = try state.scalar("progress.last_epoch_loss", in: source)
        return loop
    }
}

/// Writes the tensors of `state` under `prefix.` into `model`'s parameters and buffers (in
/// place: arena views stay views), refusing a missing tensor or another shape by name.
func restoreState(of model: any Layer, from state: TrainingState, prefix: String, source: String) throws {
    let saved = state.group(prefix)
    for (name, p) in model.namedState() {
        guard let t = saved[name], t.shape == p.shape else {
            throw CheckpointError.stateMismatch(checkpoint: source, detail: "'\(prefix).\(name)' is missing or has another shape")
        }
        p.assign(t)
    }
}

/// The identity of a run, written into its checkpoints' manifests and compared when resuming: a
/// resume whose command, settings, data or starting weights differ is refused, naming them.
public enum RunIdentity {
    /// FNV-1a of every parameter and buffer of `model`, in state order, as hexadecimal: a frozen
    /// teacher or a starting model is identified by its weights, not by its file name.
    public static func weightsHash(of model: any Layer) -> String {
        var hash = FNV1a()
        for (_, p) in model.namedState() {
            p.value.withUnsafeBufferPointer { hash.add(bytes: UnsafeRawBufferPointer($0)) }
        }
        return String(hash.value, radix: 16)
    }

    /// `acq-dist pretrain`: the configuration and the data.
    public static func pretrain(_ config: PretrainConfig, train: Dataset, test: Dataset) throws -> [String: String] {
        var run = try common("pretrain", config: config, train: train, limit: config.trainLimit)
        run.merge(testData(test)) { $1 }
        return run
    }

    /// `acq-dist finetune`: the configuration, the data and the starting model (architecture and
    /// weights, hashed before any step changes them).
    public static func finetune(_ config: FinetuneConfig, model: ResNet, train: Dataset, test: Dataset) throws -> [String: String] {
        var run = try common("finetune", config: config, train: train, limit: config.trainLimit)
        run.merge(testData(test)) { $1 }
        run["model.architecture"] = "\(model.config)"
        run["model.weights_fnv1a"] = weightsHash(of: model)
        return run
    }

    /// `acq-dist quantize --method qat`: the configuration, the quantization, the training data
    /// and the teacher (architecture and weights).
    public static func qat(_ config: QATConfig, quantization: QuantizationConfig, teacher: ResNet,
                           train: Dataset) throws -> [String: String] {
        var run = try common("qat", config: config, train: train, limit: config.trainLimit)
        run.merge(try StartupChecks.fields(of: quantization).mapKeys { "quantization." + $0 }) { $1 }
        run["teacher.architecture"] = "\(teacher.config)"
        run["teacher.weights_fnv1a"] = weightsHash(of: teacher)
        return run
    }

    private static func common<C: Encodable>(_ kind: String, config: C, train: Dataset, limit: Int?) throws -> [String: String] {
        var run = try StartupChecks.fields(of: config).mapKeys { "config." + $0 }
        run["kind"] = kind
        run["data.train"] = train.name
        run["data.train_count"] = "\(limit.map { min($0, train.count) } ?? train.count)"
        return run
    }

    private static func testData(_ test: Dataset) -> [String: String] {
        ["data.test": test.name, "data.test_count": "\(test.count)"]
    }
}

/// A resume refused because the checkpoint was saved by another kind of run (a pretraining
/// checkpoint given to `finetune`). Every rank throws it after the same broadcast.
struct OtherKindOfRun: CollectiveFailure, CustomStringConvertible {
    let description: String
}

extension RunCheckpoints {
    /// `resume(template:)`, after refusing a checkpoint that another kind of run saved with one
    /// line that says so: the general comparison of settings would list the configuration
    /// fields that differ (they sort first) and bury the reason.
    func resumeSameKind(template: TrainingState) throws -> (state: TrainingState, step: Int)? {
        guard let resume = options.resume else { return nil }
        let communicator = store.communicator
        var message = ""
        if communicator.rank == 0 {
            let folder: URL?
            switch resume {
            case let .folder(path):
                folder = URL(fileURLWithPath: path)
            case .latest:
                let pointer = store.directory.appendingPathComponent("latest")
                folder = (try? String(contentsOf: pointer, encoding: .utf8))
                    .map { store.directory.appendingPathComponent($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
            // An unreadable manifest is left to the load, which names the damage (and, for
            // `latest`, falls back past it).
            if let folder, let manifest = try? CheckpointManifest.read(from: folder, checkpoint: folder.path),
               let kind = run["kind"], manifest.run["kind"] != kind {
                message = "checkpoint \(folder.path) was saved by a \(manifest.run["kind"] ?? "unknown") run; \(kind) cannot continue it (resume it with the command that saved it)"
            }
        }
        let bytes = communicator.size > 1 ? try communicator.broadcastBytes(Array(message.utf8), root: 0) : Array(message.utf8)
        guard bytes.isEmpty else { throw OtherKindOfRun(description: String(decoding: bytes, as: UTF8.self)) }
        return try self.resume(template: template)
    }
}
