import TensorCore

/// The contents of a safetensors file: named tensors in file order, their on-disk dtypes, and the
/// string metadata of the header. Reading converts every dtype to float32; writing converts back.
public struct SafetensorsFile: Sendable {
    public var metadata: [String: String]
    /// In insertion order for files built in memory, in data order for files read from disk.
    public private(set) var tensors: [(name: String, tensor: Tensor)] = []
    public private(set) var dtypes: [String: DType] = [:]
    /// Exact values of integer tensors (see ExactIntegers.swift).
    public internal(set) var exactIntegers: [String: [Int64]] = [:]
    /// The file this came from (or will be reported as); every error message starts with it.
    public var source: String
    private var positions: [String: Int] = [:]

    public init(metadata: [String: String] = [:], source: String = "<memory>") {
        self.metadata = metadata
        self.source = source
    }

    public var names: [String] { tensors.map(\.name) }
    public var count: Int { tensors.count }
    public func contains(_ name: String) -> Bool { positions[name] != nil }

    public subscript(name: String) -> Tensor? {
        positions[name].map { tensors[$0].tensor }
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let i = positions[name] else {
            throw SafetensorsError.missingTensor(file: source, tensor: name, suggestions: closeNames(to: name))
        }
        return tensors[i].tensor
    }

    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        let t = try tensor(name)
        guard t.shape == shape else {
            throw SafetensorsError.shapeMismatch(file: source, tensor: name, expected: shape, actual: t.shape)
        }
        return t
    }

    /// Adds a tensor, or replaces one of the same name in place so the file order stays stable.
    public mutating func set(_ name: String, _ tensor: Tensor, dtype: DType = .f32) {
        precondition(name != "__metadata__", "'__metadata__' is reserved by the safetensors header")
        if let i = positions[name] {
            tensors[i].tensor = tensor
        } else {
            positions[name] = tensors.count
            tensors.append((name, tensor))
        }
        dtypes[name] = dtype
        exactIntegers[name] = nil
    }

    /// Up to three names within a small edit distance, closest first, for "did you mean" hints.
    private func closeNames(to name: String) -> [String] {
        let budget = max(2, name.count / 3)
        return tensors.lazy.map(\.name)
            .map { (name: $0, distance: editDistance(Array(name), Array($0))) }
            .filter { $0.distance <= budget }
            .sorted { ($0.distance, $0.name) < ($1.distance, $1.name) }
            .prefix(3).map(\.name)
    }
}

private func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty || b.isEmpty { return a.count + b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
