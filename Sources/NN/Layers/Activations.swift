import Autodiff

public final class ReLU: Layer {
    public init() {}
    public func forward(_ x: Variable) -> Variable { relu(x) }
}

public final class LeakyReLU: Layer {
    public let slope: Float
    public init(slope: Float = 0.2) { self.slope = slope }
    public func forward(_ x: Variable) -> Variable { leakyRelu(x, slope: slope) }
}

public final class Tanh: Layer {
    public init() {}
    public func forward(_ x: Variable) -> Variable { tanh(x) }
}

/// [N, C, H, W] -> [N, C] by the spatial mean.
public final class GlobalAveragePool: Layer {
    public init() {}
    public func forward(_ x: Variable) -> Variable { flatten(globalAveragePool(x)) }
}

public final class UpsampleNearest2x: Layer {
    public init() {}
    public func forward(_ x: Variable) -> Variable { upsampleNearest2x(x) }
}
