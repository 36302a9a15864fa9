import Autodiff
import TensorCore

/// All trainable parameters of a model in one contiguous buffer, with a gradient buffer of the
/// same layout (llm.c's flat parameter memory): one all-reduce covers every gradient, the
/// optimizer is one loop, and a checkpoint slices one vector. Each parameter's value becomes a
/// view into the buffer, so layers, optimizer and arena see the same memory.
public final class ParameterArena {
    public let entries: [(name: String, parameter: Parameter, range: Range<Int>)]
    public let count: Int
    public let values: Tensor
    public let gradients: Tensor

    public init(_ parameters: [(String, Parameter)]) {
        var offset = 0
        var entries: [(String, Parameter, Range<Int>)] = []
        for (name, p) in parameters {
            entries.append((name, p, offset..<(offset + p.value.count)))
            offset += p.value.count
        }
        count = offset
        let storage = TensorStorage(zeros: count)
        values = Tensor(viewOf: storage, offset: 0, shape: [count])
        gradients = Tensor(viewOf: TensorStorage(zeros: count), offset: 0, shape: [count])
        self.entries = entries.map { (name: $0.0, parameter: $0.1, range: $0.2) }
        for (name, p, range) in entries {
            precondition(!p.isInArena, "parameter '\(name)' is already in a ParameterArena: a second arena would detach it from the first one's optimizer")
            p.rebind(to: Tensor(viewOf: storage, offset: range.lowerBound, shape: p.shape))
            p.isInArena = true
        }
    }

    /// The arena of a model's trainable parameters.
    public convenience init(model: any Layer) { self.init(model.namedParameters()) }

    /// Copies every parameter's gradient into the flat gradient buffer (zeros where none).
    public func gatherGradients() {
        for index in entries.indices { gatherGradient(entry: index) }
    }

    /// Copies entry `index`'s gradient into its range of the flat gradient buffer (zeros when
    /// the parameter has none).
    public func gatherGradient(entry index: Int) {
        let (p, range) = (entries[index].parameter, entries[index].range)
        gradients.withSharedMutableBufferPointer { g in
            if let grad = p.grad {
                grad.withUnsafeBufferPointer { src in
                    (g.baseAddress! + range.lowerBound).update(from: src.baseAddress!, count: range.count)
                }
            } else {
                (g.baseAddress! + range.lowerBound).update(repeating: 0, count: range.count)
            }
        }
    }

    /// A hook for `Variable.backward(onLeafGradient:)`: when a parameter's gradient is final it
    /// is copied into the flat buffer at once and `ready(entry index)` is called, so a gradient
    /// all-reduce can start on it during backward. Leaves that are not parameters of this arena
    /// (inputs that asked for a gradient) are ignored. Make one per sweep: it maps the
    /// parameters' current graph leaves, which `requiresGrad` changes replace.
    public func gradientHook(_ ready: @escaping (Int) throws -> Void) -> (Variable) throws -> Void {
        var indexOfLeaf: [ObjectIdentifier: Int] = [:]
        for (index, entry) in entries.enumerated() { indexOfLeaf[ObjectIdentifier(entry.parameter.variable)] = index }
        return { [unowned self] leaf in
            guard let index = indexOfLeaf[ObjectIdentifier(leaf)] else { return }
            gatherGradient(entry: index)
            try ready(index)
        }
    }

    public func zeroGradients() {
        for (_, p, _) in entries { p.zeroGradient() }
    }
}
