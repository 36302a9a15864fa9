import Autodiff
import TensorCore

/// A convolution and the batch norm after it, run according to the block's mode (set with the
/// model's `setMode`, which also sets the batch norm's):
/// - train: conv, then BN with batch statistics (running statistics updated);
/// - eval: conv, then BN with running statistics;
/// - tune: one convolution with the BN folded into its weights at every forward, from the real
///   parameters: eval's values and gradients without keeping the conv output for backward;
/// - deploy: one convolution with parameters folded once (`foldForDeployment()`), which then
///   are the parameters that train.
///
/// The block owns no names: the conv and BN keep theirs (`c1`, `b1`, ...) in the model's state.
public final class ConvBN {
    public let conv: Conv2d
    public let bn: BatchNorm2d
    public var mode: Mode = .train
    /// Folded weight and bias of deploy mode, made by `foldForDeployment()`.
    public private(set) var deployed: (weight: Parameter, bias: Parameter)?

    public init(_ conv: Conv2d, _ bn: BatchNorm2d) {
        precondition(conv.weight.shape[0] == bn.channels,
                     "ConvBN: conv has \(conv.weight.shape[0]) output channels, BN \(bn.channels)")
        self.conv = conv
        self.bn = bn
    }

    /// Why tune or deploy mode cannot apply, or nil when it can.
    public var foldingObstacle: String? {
        if bn.mode.usesBatchStatistics { return "its batch norm is in train mode (batch statistics change every step)" }
        if !bn.tracksRunningStatistics { return "its batch norm keeps no running statistics" }
        if bn.weight == nil || bn.bias == nil { return "its batch norm has no affine parameters" }
        return nil
    }

    /// - x: [N, in, H, W]. Returns [N, out, Ho, Wo].
    public func forward(_ x: Variable) -> Variable { forward(x, relu: false) }

    /// relu(block(x)) when `relu`; with batch statistics the BN and the ReLU are one op.
    public func forward(_ x: Variable, relu applyReLU: Bool) -> Variable {
        let y: Variable
        switch mode {
        case .train, .eval:
            return bn.forward(conv(x), relu: applyReLU)
        case .tune:
            precondition(foldingObstacle == nil, "Tune mode does not apply to this block: \(foldingObstacle ?? "")")
            y = convBatchNormFolded(x, weight: conv.weight.variable, bias: conv.bias?.variable,
                                    gamma: bn.weight!.variable, beta: bn.bias!.variable,
                                    runningMean: bn.runningMean.value, runningVar: bn.runningVar.value,
                                    eps: bn.eps, stride: conv.stride, padding: conv.padding)
        case .deploy:
            if deployed == nil { foldForDeployment() }
            y = conv2d(x, weight: deployed!.weight.variable, bias: deployed!.bias.variable,
                       stride: conv.stride, padding: conv.padding)
        }
        return applyReLU ? relu(y) : y
    }

    /// Whether `foldedForInference()` gives this block's values: no graph is recorded and
    /// the batch norm normalises with its running statistics and does not keep its input.
    public var runsFusedInference: Bool {
        !GradientMode.isEnabled && mode != .train && foldingObstacle == nil && !bn.capturesInput
    }

    /// This block as one convolution with its BN folded into the weights and bias, for
    /// inference (`runsFusedInference`): fold once, then apply to any number of chunks.
    public func foldedForInference() -> FoldedConvolution {
        precondition(runsFusedInference, "fused inference needs no gradients and running statistics: \(foldingObstacle ?? "gradients are recorded or the BN keeps its input")")
        if mode == .deploy {
            if deployed == nil { foldForDeployment() }
            return FoldedConvolution(weights: PreparedConvolutionWeights(deployed!.weight.value, stride: conv.stride,
                                                                         padding: conv.padding),
                                     bias: deployed!.bias.value)
        }
        let fold = bn.fold(convBias: conv.bias?.value.scalars)
        return FoldedConvolution(weights: PreparedConvolutionWeights(conv.weight.value.scaledPerOutputChannel(fold.scale),
                                                                     stride: conv.stride, padding: conv.padding),
                                 bias: Tensor(shape: [bn.channels], scalars: fold.bias))
    }

    /// Computes deploy mode's parameters from the current conv and BN: w' = w * s,
    /// b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps).
    public func foldForDeployment() {
        precondition(foldingObstacle == nil, "cannot fold for deployment: \(foldingObstacle ?? "")")
        let fold = bn.fold(convBias: conv.bias?.value.scalars)
        let w = conv.weight.value.scaledPerOutputChannel(fold.scale)
        let bias = Tensor(shape: [bn.channels], scalars: fold.bias)
        deployed = (Parameter(w), Parameter(bias))
    }
}

/// A conv+BN block folded for inference: y = relu?(conv(x, weight) + bias + residual), the BN,
/// the shortcut and the ReLU applied as the convolution stores its output (`ConvEpilogue`).
public struct FoldedConvolution {
    /// The folded weights, prepared once for the chunks (Winograd's transform).
    public let weights: PreparedConvolutionWeights
    public let bias: Tensor
    public var weight: Tensor { weights.weight }

    /// - x: [N, in, H, W]; residual: [N, out, Ho, Wo] or nil. Returns [N, out, Ho, Wo].
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, relu: Bool) -> Tensor {
        conv2dForward(x, weights: weights, epilogue: ConvEpilogue(bias: bias, residual: residual, relu: relu))
    }
}

extension BatchNorm2d {
    /// This batch norm's running statistics folded into a preceding conv with bias `convBias`.
    public func fold(convBias: [Float]?) -> BatchNormFold {
        BatchNormFold(gamma: weight?.value.scalars, beta: bias?.value.scalars, runningMean: runningMean.value.scalars,
                      runningVar: runningVar.value.scalars, eps: eps, convBias: convBias)
    }
}

/// Errors of switching a model's conv+BN blocks between modes.
public struct ConvBNModeError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

extension Layer {
    /// Every conv+BN block of the model (models that have them expose them).
    public var convBNBlocks: [(String, ConvBN)] {
        var out: [(String, ConvBN)] = []
        func visit(_ layer: any Layer, _ prefix: String) {
            if let owner = layer as? ConvBNOwner { out += owner.ownConvBNBlocks.map { (prefix + $0.0, $0.1) } }
            for (name, child) in layer.children { visit(child, prefix + name + ".") }
        }
        visit(self, "")
        return out
    }

    /// Sets `mode` on every layer after checking that every conv+BN block can run in it:
    /// tune and deploy need batch norms with running statistics. Nothing changes on failure.
    public func setModeChecked(_ mode: Mode) throws {
        if mode == .tune || mode == .deploy {
            for (name, block) in convBNBlocks {
                if !block.bn.tracksRunningStatistics || block.bn.weight == nil {
                    throw ConvBNModeError(description: "\(mode.rawValue) mode does not apply to block '\(name)': "
                        + (block.bn.tracksRunningStatistics ? "its batch norm has no affine parameters"
                                                            : "its batch norm keeps no running statistics"))
                }
            }
        }
        setMode(mode)
        if mode == .deploy { for (_, block) in convBNBlocks { block.foldForDeployment() } }
    }

    /// Checks that every conv+BN block can run in its mode now: a block in tune or deploy mode
    /// whose batch norm was put back in train mode (or keeps no statistics) is an error.
    public func validateConvBNModes() throws {
        for (name, block) in convBNBlocks where block.mode == .tune || block.mode == .deploy {
            if let obstacle = block.foldingObstacle {
                throw ConvBNModeError(description: "\(block.mode.rawValue) mode does not apply to block '\(name)': \(obstacle)")
            }
        }
    }
}

/// A layer that runs some of its convs and batch norms as `ConvBN` blocks.
public protocol ConvBNOwner {
    /// The blocks with names of their convs ("c1", "sc.0", ...).
    var ownConvBNBlocks: [(String, ConvBN)] { get }
}
