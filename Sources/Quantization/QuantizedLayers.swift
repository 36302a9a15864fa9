import Autodiff
import NN

/// A convolution whose weight is fake-quantized at every forward. It wraps the float layer and
/// keeps its parameters under their own names (`weight`, `bias`), so a student's state dict has
/// the teacher's names; the weight quantizer has no state of its own.
public final class QuantizedConv2d: Layer {
    public let conv: Conv2d
    public let weightFakeQuant: FakeQuantize

    public init(_ conv: Conv2d, bits: Int, scheme: QScheme, range: RangeMethod = .minMax) {
        self.conv = conv
        weightFakeQuant = .weight(bits: bits, scheme: scheme, range: range)
    }

    public var ownState: [(String, Parameter)] { conv.ownState }

    /// The weight as the forward uses it: quantized and dequantized.
    public var quantizedWeight: Variable { weightFakeQuant(conv.weight.variable) }

    /// - x: [N, in, H, W]. Returns [N, out, Ho, Wo].
    public func forward(_ x: Variable) -> Variable {
        conv2d(x, weight: quantizedWeight, bias: conv.bias?.variable, stride: conv.stride, padding: conv.padding)
    }
}

/// A fully connected layer whose weight is fake-quantized per output row at every forward.
public final class QuantizedLinear: Layer {
    public let linear: Linear
    public let weightFakeQuant: FakeQuantize

    public init(_ linear: Linear, bits: Int, scheme: QScheme, range: RangeMethod = .minMax) {
        self.linear = linear
        weightFakeQuant = .weight(bits: bits, scheme: scheme, range: range)
    }

    public var ownState: [(String, Parameter)] { linear.ownState }

    public var quantizedWeight: Variable { weightFakeQuant(linear.weight.variable) }

    /// - x: [N, in]. Returns [N, out].
    public func forward(_ x: Variable) -> Variable {
        Autodiff.linear(x, weight: quantizedWeight, bias: linear.bias?.variable)
    }
}
