import Distributed
import Foundation
import NN
import ShardedCheckpoint
import TensorCore

/// What a data-free run saves: the generator and the student (parameters and buffers: the
/// student's observer ranges and frozen running statistics), both optimizers, the next step and
/// the accuracies measured so far. The teacher is frozen and part of the run's identity instead.
/// Random draws are counter-based on (seed, step, sample), so the step is their position.
extension DataFreeTrainer {
    public func trainingState(nextStep: Int, measured: [String: Double]) -> TrainingState {
        var state = TrainingState()
        state.append("generator", generator.namedState().map { ($0.0, $0.1.value) })
        state.append("student", student.namedState().map { ($0.0, $0.1.value) })
        state.append("optimizer.generator", adam.state)
        state.append("optimizer.student", sgd.state)
        state.append("progress.next_step", scalar: Double(nextStep))
        for key in DataFreeTrainer.measuredKeys { state.append("measured." + key, scalar: measured[key] ?? .nan) }
        return state
    }

    static let measuredKeys = ["teacher_accuracy", "student_before_accuracy"]

    /// Restores a state of `trainingState`'s layout; returns the next step and the measurements.
    public func restore(_ state: TrainingState, source: String) throws -> (nextStep: Int, measured: [String: Double]) {
        try restoreState(of: generator, from: state, prefix: "generator", source: source)
        try restoreState(of: student, from: state, prefix: "student", source: source)
        try adam.loadState(state.group("optimizer.generator"))
        try sgd.loadState(state.group("optimizer.student"))
        var measured: [String: Double] = [:]
        for key in DataFreeTrainer.measuredKeys {
            let v = try state.scalar("measured." + key, in: source)
            if !v.isNaN { measured[key] = v }
        }
        return (Int(try state.scalar("progress.next_step", in: source)), measured)
    }

    /// The run's identity and settings, which a resumed run must share: the method's whole
    /// configuration, the quantization, and the teacher (architecture and a hash of its weights).
    public static func runIdentity(config: DataFreeConfig, teacher: ResNet, quantization: String) throws -> [String: String] {
        var run = try StartupChecks.fields(of: config).mapKeys { "config." + $0 }
        run["kind"] = "datafree"
        run["method"] = config.method.rawValue
        run["quantization"] = quantization
        run["teacher.architecture"] = "\(teacher.config)"
        run["teacher.weights_fnv1a"] = RunIdentity.weightsHash(of: teacher)
        return run
    }
}

extension Dictionary {
    func mapKeys(_ transform: (Key) -> Key) -> [Key: Value] {
        Dictionary(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
