import Autodiff

/// Layers applied in order; children are named "0", "1", ... as in PyTorch.
public final class Sequential: Layer {
    public let layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers }

    public var children: [(String, any Layer)] {
        layers.enumerated().map { (String($0.offset), $0.element) }
    }

    public func forward(_ x: Variable) -> Variable {
        layers.reduce(x) { $1.forward($0) }
    }
}
