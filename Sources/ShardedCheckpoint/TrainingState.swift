import TensorCore

/// The whole state a training run needs to continue exactly: parameters, buffers (running
/// statistics, observer ranges), optimizer state, counters, as named float32 tensors in a fixed
/// order. A checkpoint cuts their concatenation into one contiguous piece per rank.
public struct TrainingState {
    public private(set) var entries: [(name: String, tensor: Tensor)] = []
    private var index: [String: Int] = [:]

    public init() {}

    public init(_ entries: [(String, Tensor)]) {
        for (name, tensor) in entries { append(name, tensor) }
    }

    /// Adds a tensor; names are unique (a second one with the same name is a programming error).
    public mutating func append(_ name: String, _ tensor: Tensor) {
        precondition(index[name] == nil, "training state: '\(name)' appears twice")
        index[name] = entries.count
        entries.append((name, tensor))
    }

    /// Adds every tensor of `group` under `prefix.`.
    public mutating func append(_ prefix: String, _ group: [(String, Tensor)]) {
        for (name, tensor) in group { append(prefix + "." + name, tensor) }
    }

    /// A double (a step counter, an accuracy) as three float32 parts whose sum is the double
    /// again, exactly: the state holds float32 only, and a resumed run must report the same
    /// figures as an uninterrupted one.
    public mutating func append(_ name: String, scalar: Double) {
        let high = Float(scalar)
        let rest = high.isFinite ? scalar - Double(high) : 0
        let middle = Float(rest)
        let low = Float(rest - Double(middle))
        append(name, Tensor(shape: [3], scalars: [high, middle, low]))
    }

    public subscript(name: String) -> Tensor? { index[name].map { entries[$0].tensor } }

    public var names: [String] { entries.map(\.name) }

    /// Total float32 elements: the length of the flat vector the shards cut.
    public var elementCount: Int { entries.reduce(0) { $0 + $1.tensor.count } }

    /// The tensors under `prefix.`, with the prefix removed.
    public func group(_ prefix: String) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, tensor) in entries where name.hasPrefix(prefix + ".") {
            out[String(name.dropFirst(prefix.count + 1))] = tensor
        }
        return out
    }

    /// The value of a scalar entry, or an error naming the entry and the checkpoint.
    public func scalar(_ name: String, in source: String) throws -> Double {
        guard let t = self[name], t.count == 3 else {
            throw CheckpointError.stateMismatch(checkpoint: source, detail: "it has no scalar '\(name)'")
        }
        let parts = t.scalars
        return parts[0].isFinite ? Double(parts[0]) + Double(parts[1]) + Double(parts[2]) : Double(parts[0])
    }
}
