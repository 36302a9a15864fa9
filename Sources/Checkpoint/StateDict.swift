import Foundation
import NN
import Safetensors
import TensorCore

/// Errors of moving a model's state in and out of files; each names the file and the tensor.
public enum StateDictError: Error, CustomStringConvertible, Equatable {
    case missingTensor(file: String, name: String)
    case shapeMismatch(file: String, name: String, expected: [Int], actual: [Int])
    case unexpectedTensors(file: String, names: [String])
    case wrongKind(file: String, expected: String, actual: String)
    case badMetadata(file: String, key: String, value: String)

    public var description: String {
        switch self {
        case let .missingTensor(file, name):
            return "\(file): tensor '\(name)' is missing (is this a checkpoint of the same architecture?)"
        case let .shapeMismatch(file, name, expected, actual):
            return "\(file): tensor '\(name)' has shape \(actual), the model expects \(expected)"
        case let .unexpectedTensors(file, names):
            let head = names.prefix(5).joined(separator: ", ")
            return "\(file): \(names.count) tensor(s) the model does not have: \(head)\(names.count > 5 ? ", ..." : "")"
        case let .wrongKind(file, expected, actual):
            // Roles are "teacher", "student", "integer": the article follows the word.
            func article(_ role: String) -> String { "aeiou".contains(role.prefix(1)) ? "an" : "a" }
            return "\(file): this is \(article(actual)) \(actual) file, expected \(article(expected)) \(expected) file"
        case let .badMetadata(file, key, value):
            return "\(file): metadata '\(key)' has an unusable value '\(value)'"
        }
    }
}

/// A model's parameters and buffers under their PyTorch state-dict names.
public enum StateDict {
    /// The model's state as a safetensors file (buffers flagged integer are written as int64,
    /// as PyTorch's `num_batches_tracked`).
    public static func file(of model: any Layer, prefix: String = "", metadata: [String: String] = [:]) -> SafetensorsFile {
        var file = SafetensorsFile(metadata: metadata)
        for (name, p) in model.namedState() {
            file.set(prefix + name, p.value, dtype: p.isInteger ? .i64 : .f32)
        }
        return file
    }

    /// Loads every parameter and buffer of `model` from `file` (names under `prefix`).
    /// `num_batches_tracked` may be absent (older PyTorch files); any other missing tensor, a
    /// shape mismatch, or (when `strict`) a tensor the model does not have is an error.
    /// With `buffers: false` only the trainable parameters are read (a file of parameters alone,
    /// as for a generator whose batch norms never use running statistics).
    public static func load(_ file: SafetensorsFile, into model: any Layer, prefix: String = "", strict: Bool = true,
                            buffers: Bool = true) throws {
        let state = buffers ? model.namedState() : model.namedParameters()
        // Check everything before changing anything: a failed load leaves the model as it was.
        var values: [(Parameter, Tensor)] = []
        for (name, p) in state {
            let key = prefix + name
            guard let t = file[key] else {
                if name.hasSuffix("num_batches_tracked") { continue }
                throw StateDictError.missingTensor(file: file.source, name: key)
            }
            guard t.shape == p.shape || (t.count == 1 && p.value.count == 1 && p.shape.isEmpty) else {
                throw StateDictError.shapeMismatch(file: file.source, name: key, expected: p.shape, actual: t.shape)
            }
            values.append((p, t.reshaped(p.shape)))
        }
        if strict {
            let known = Set(state.map { prefix + $0.0 })
            let extra = file.names.filter { $0.hasPrefix(prefix) && !known.contains($0) }
            if !extra.isEmpty { throw StateDictError.unexpectedTensors(file: file.source, names: extra) }
        }
        for (p, t) in values { p.assign(t) }
    }
}
