import Autodiff
import TensorCore

/// Fully connected layer: weight [out, in], bias [out].
public final class Linear: Layer {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, seed: UInt64 = 0) {
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(Tensor.randomUniform([outFeatures, inFeatures], bound: bound, seed: seed))
        self.bias = bias ? Parameter(Tensor.randomUniform([outFeatures], bound: bound, seed: seed, purpose: 1)) : nil
    }

    public var ownState: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// - x: [N, in]. Returns [N, out].
    public func forward(_ x: Variable) -> Variable {
        linear(x, weight: weight.variable, bias: bias?.variable)
    }
}
