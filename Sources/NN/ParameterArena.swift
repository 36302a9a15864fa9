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
        for (_, p, range) in entries {
            p.rebind(to: Tensor(viewOf: storage, offset: range.lowerBound, shape: p.shape))
        }
    }

    /// The arena of a model's trainable parameters.
    public convenience init(model: any Layer) { self.init(model.namedParameters()) }

    /// Copies every parameter's gradient into the flat gradient buffer (zeros where none).
    public func gatherGradients() {
        gradients.withSharedMutableBufferPointer { g in
            for (_, p, range) in entries {
                if let grad = p.grad {
                    grad.withUnsafeBufferPointer { src in
                        (g.baseAddress! + range.lowerBound).update(from: src.baseAddress!, count: range.count)
                    }
                } else {
                    (g.baseAddress! + range.lowerBound).update(repeating: 0, count: range.count)
                }
            }
        }
    }

    public func zeroGradients() {
        for (_, p, _) in entries { p.zeroGradient() }
    }
}
