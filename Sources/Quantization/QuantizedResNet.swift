import Autodiff
import NN
import TensorCore

/// A BasicBlock of the student: the teacher's block with fake-quantized convolution weights and a
/// fake-quantized activation after each ReLU. The residual addition stays in float before the
/// final ReLU, as in GDFQ (pytorchcv's ResUnit).
///
/// State names are the teacher's (`c1`, `b1`, `c2`, `b2`, `sc.0`, `sc.1`) plus `act1` (after the
/// inner ReLU) and `act2` (after the block's output ReLU), each with `min_val` and `max_val`.
public final class QuantizedBasicBlock: Layer {
    public let c1: QuantizedConv2d, b1: BatchNorm2d, act1: FakeQuantize
    public let c2: QuantizedConv2d, b2: BatchNorm2d
    public let shortcut: (conv: QuantizedConv2d, bn: BatchNorm2d)?
    public let act2: FakeQuantize
    private let shortcutLayer: Sequential?

    init(_ block: BasicBlock, weightBits: Int, outputBits: Int, config: QuantizationConfig) {
        let act = { FakeQuantize.activation(bits: $0, scheme: config.activationScheme, momentum: config.observerMomentum) }
        c1 = QuantizedConv2d(block.c1, bits: weightBits, scheme: config.weightScheme)
        b1 = block.b1
        act1 = act(config.activationBits)
        c2 = QuantizedConv2d(block.c2, bits: weightBits, scheme: config.weightScheme)
        b2 = block.b2
        if let sc = block.shortcut, let conv = sc.layers[0] as? Conv2d, let bn = sc.layers[1] as? BatchNorm2d {
            let q = QuantizedConv2d(conv, bits: weightBits, scheme: config.weightScheme)
            shortcut = (q, bn)
            shortcutLayer = Sequential([q, bn])
        } else {
            precondition(block.shortcut == nil, "BasicBlock shortcut is not [Conv2d, BatchNorm2d]")
            (shortcut, shortcutLayer) = (nil, nil)
        }
        act2 = act(outputBits)
    }

    public var children: [(String, any Layer)] {
        var c: [(String, any Layer)] = [("c1", c1), ("b1", b1), ("act1", act1), ("c2", c2), ("b2", b2)]
        if let shortcutLayer { c.append(("sc", shortcutLayer)) }
        return c + [("act2", act2)]
    }

    /// - x: [N, in, H, W] (the previous block's quantized output). Returns [N, out, H/s, W/s].
    public func forward(_ x: Variable) -> Variable {
        let h = act1(relu(b1(c1(x))))
        let out = b2(c2(h))
        return act2(relu(out + (shortcutLayer?.forward(x) ?? x)))
    }
}

/// The quantized student of a CIFAR-style ResNet: every convolution and the classifier with
/// fake-quantized weights, every ReLU followed by a fake-quantized activation, batch norms kept
/// with the teacher's running statistics (frozen: the student runs in eval mode) and trainable
/// gamma/beta. The classifier's input is the average pool of the last quantized activation,
/// not quantized again: its integers are the pooled sums (see IntegerResNet).
///
/// State: the teacher's names, plus `act` (after the stem's ReLU), the blocks' `act1`/`act2`
/// and, when the input is quantized, `input`.
public final class QuantizedResNet: Layer {
    public let architecture: ResNetConfig
    public let quantization: QuantizationConfig
    public let input: FakeQuantize?
    public let conv: QuantizedConv2d
    public let bn: BatchNorm2d
    public let act: FakeQuantize
    public let blocks: [QuantizedBasicBlock]
    public let fc: QuantizedLinear
    private let layers: Sequential

    /// Wraps `model`'s layers (not a copy: see `quantize(_:config:inputRange:)`, which copies).
    /// - inputRange: the normalised pixel range, used when `config.quantizeInput`.
    init(wrapping model: ResNet, config: QuantizationConfig, inputRange: ClosedRange<Float>) {
        architecture = model.config
        quantization = config
        let endBits = config.firstAndLastAt8Bits ? 8 : config.weightBits
        let act = { FakeQuantize.activation(bits: $0, scheme: config.activationScheme, momentum: config.observerMomentum) }
        if config.quantizeInput {
            // A fixed range, never calibrated: the whole normalised pixel range at 8 bits.
            let q = act(8)
            (q.observer as! MovingAverageMinMaxObserver).setRange(inputRange.lowerBound, inputRange.upperBound)
            input = q
        } else {
            input = nil
        }
        conv = QuantizedConv2d(model.conv, bits: endBits, scheme: config.weightScheme)
        bn = model.bn
        self.act = act(config.activationBits)
        let teacherBlocks = model.layers.layers.map { $0 as! BasicBlock }
        blocks = teacherBlocks.enumerated().map { i, block in
            // The last activation is the classifier's input: 8 bits when the last layer keeps 8.
            let isLast = i == teacherBlocks.count - 1
            return QuantizedBasicBlock(block, weightBits: config.weightBits,
                                       outputBits: isLast && config.firstAndLastAt8Bits ? 8 : config.activationBits,
                                       config: config)
        }
        layers = Sequential(blocks)
        fc = QuantizedLinear(model.fc, bits: endBits, scheme: config.weightScheme)
    }

    public var children: [(String, any Layer)] {
        (input.map { [("input", $0)] } ?? []) + [("conv", conv), ("bn", bn), ("act", act), ("layers", layers), ("fc", fc)]
    }

    /// The last stage's output before pooling, quantized: [N, 64, H/4, W/4].
    public func features(_ x: Variable) -> Variable {
        precondition(x.value.rank == 4 && x.shape[1] == architecture.inChannels,
                     "quantized \(architecture.name) expects [N, \(architecture.inChannels), H, W], got \(x.shape)")
        precondition(!bn.mode.usesBatchStatistics, "the quantized student runs its batch norms on running statistics: set eval mode")
        let image = input?.forward(x) ?? x
        return layers(act(relu(bn(conv(image)))))
    }

    public func classify(_ features: Variable) -> Variable {
        fc(flatten(globalAveragePool(features)))
    }

    /// - x: [N, inChannels, H, W]. Returns logits [N, classes].
    public func forward(_ x: Variable) -> Variable { classify(features(x)) }

    /// The activation quantizers that calibration sets, with their state names (not the input's,
    /// whose range is fixed).
    public var activationQuantizers: [(String, FakeQuantize)] {
        var out: [(String, FakeQuantize)] = [("act", act)]
        for (i, b) in blocks.enumerated() { out += [("layers.\(i).act1", b.act1), ("layers.\(i).act2", b.act2)] }
        return out
    }

    /// Every layer whose weight is quantized, with its state name, in forward order.
    public var weightQuantizedLayers: [(String, any Layer)] {
        var out: [(String, any Layer)] = [("conv", conv)]
        for (i, b) in blocks.enumerated() {
            out += [("layers.\(i).c1", b.c1), ("layers.\(i).c2", b.c2)]
            if let sc = b.shortcut { out.append(("layers.\(i).sc.0", sc.conv)) }
        }
        return out + [("fc", fc)]
    }

    public var batchNorms: [BatchNorm2d] { allLayers().compactMap { $0 as? BatchNorm2d } }
}
