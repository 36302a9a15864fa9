import Autodiff
import TensorCore

/// 2-D convolution layer (square kernel). Weight [out, in, k, k], optional bias [out].
public final class Conv2d: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Int

    /// Weights drawn as PyTorch's default (uniform, bound 1/sqrt(fan_in)) unless `init` says else.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, seed: UInt64 = 0, initialization: WeightInitialization = .pytorchDefault) {
        let shape = [outChannels, inChannels, kernel, kernel]
        weight = Parameter(initialization.weights(shape, fanIn: inChannels * kernel * kernel,
                                                  fanOut: outChannels * kernel * kernel, seed: seed))
        let bound = 1 / Float(inChannels * kernel * kernel).squareRoot()
        self.bias = bias ? Parameter(Tensor.randomUniform([outChannels], bound: bound, seed: seed, purpose: 1)) : nil
        self.stride = stride
        self.padding = padding
    }

    public var ownState: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// - x: [N, in, H, W]. Returns [N, out, Ho, Wo].
    public func forward(_ x: Variable) -> Variable {
        conv2d(x, weight: weight.variable, bias: bias?.variable, stride: stride, padding: padding)
    }
}

/// How a layer's weights start.
public enum WeightInitialization: Sendable {
    /// PyTorch's default for conv and linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    case pytorchDefault
    /// He normal with fan-out and ReLU gain, as torchvision's ResNets.
    case kaimingNormalFanOut

    func weights(_ shape: [Int], fanIn: Int, fanOut: Int, seed: UInt64) -> Tensor {
        switch self {
        case .pytorchDefault:
            return Tensor.randomUniform(shape, bound: 1 / Float(fanIn).squareRoot(), seed: seed)
        case .kaimingNormalFanOut:
            return Tensor.randomNormal(shape, std: (2 / Float(fanOut)).squareRoot(), seed: seed)
        }
    }
}
