import Autodiff
import TensorCore

/// A named tensor of a layer: a trainable weight, or a buffer (running statistics, counters)
/// that is saved with the model but never receives a gradient.
public final class Parameter {
    public enum Kind: Sendable { case trainable, buffer }

    public let kind: Kind
    /// Stored as an integer on disk (PyTorch's `num_batches_tracked` is int64).
    public let isInteger: Bool
    /// The graph leaf that layers use in forward; its `grad` collects the gradient.
    public private(set) var variable: Variable

    public init(_ value: Tensor, kind: Kind = .trainable, isInteger: Bool = false) {
        self.kind = kind
        self.isInteger = isInteger
        variable = Variable(value, requiresGrad: kind == .trainable)
    }

    public var value: Tensor { variable.value }
    public var grad: Tensor? { variable.grad }
    public var shape: [Int] { variable.value.shape }

    /// Whether gradients are computed for it (false for a frozen teacher).
    public var requiresGrad: Bool {
        get { variable.requiresGrad }
        set {
            precondition(kind == .trainable || !newValue, "a buffer cannot require a gradient")
            if newValue != variable.requiresGrad { variable = Variable(variable.value, requiresGrad: newValue) }
        }
    }

    /// Whether the value is a view into a `ParameterArena` (it can be in one only: a second
    /// arena would leave the first one's optimizer updating memory the layer no longer reads).
    public internal(set) var isInArena = false

    /// Replaces the value by a view into an arena, keeping the elements.
    public func rebind(to view: Tensor) {
        precondition(view.shape == shape, "rebind: \(view.shape) for parameter of shape \(shape)")
        view.writeThrough(value)
        variable = Variable(view, requiresGrad: variable.requiresGrad)
    }

    /// Overwrites the elements in place (arena views stay views).
    public func assign(_ newValue: Tensor) {
        precondition(newValue.shape == shape, "assign: \(newValue.shape) for parameter of shape \(shape)")
        variable.value.writeThrough(newValue)
    }

    public func zeroGradient() { variable.grad = nil }
}
