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
    public let block1: QuantizedConvBN, act1: FakeQuantize, block2: QuantizedConvBN
    public let shortcut: QuantizedConvBN?
    public let act2: FakeQuantize
    /// The shortcut's conv and BN under their names `sc.0` and `sc.1`.
    private let shortcutNames: Sequential?

    /// - input: the quantizer of the block's input (the previous block's `act2`, or the stem's).
    init(_ block: BasicBlock, input: FakeQuantize, weightBits: Int, outputBits: Int, config: QuantizationConfig) {
        let conv = { QuantizedConv2d($0, bits: weightBits, scheme: config.weightScheme, range: config.weightRange) }
        act1 = .activation(bits: config.activationBits, scheme: config.activationScheme, momentum: config.observerMomentum,
                           range: config.activationRange)
        block1 = QuantizedConvBN(conv(block.c1), block.b1, input: input)
        block2 = QuantizedConvBN(conv(block.c2), block.b2, input: act1)
        if let sc = block.shortcut {
            guard let c = sc.layers[0] as? Conv2d, let bn = sc.layers[1] as? BatchNorm2d else {
                preconditionFailure("BasicBlock shortcut is not [Conv2d, BatchNorm2d]")
            }
            let q = QuantizedConvBN(conv(c), bn, input: input)
            (shortcut, shortcutNames) = (q, Sequential([q.conv, bn]))
        } else {
            (shortcut, shortcutNames) = (nil, nil)
        }
        act2 = .activation(bits: outputBits, scheme: config.activationScheme, momentum: config.observerMomentum,
                           range: config.activationRange)
    }

    public var children: [(String, any Layer)] {
        var c: [(String, any Layer)] = [("c1", block1.conv), ("b1", block1.bn), ("act1", act1), ("c2", block2.conv), ("b2", block2.bn)]
        if let shortcutNames { c.append(("sc", shortcutNames)) }
        return c + [("act2", act2)]
    }

    /// - x: [N, in, H, W] (the previous block's quantized output). Returns [N, out, H/s, W/s].
    public func forward(_ x: Variable) -> Variable {
        let h = act1(relu(block1.forward(x)))
        let out = block2.forward(h)
        return act2(relu(out + (shortcut?.forward(x) ?? x)))
    }
}

/// The quantized student of a CIFAR-style ResNet: every convolution and the classifier with
/// fake-quantized weights, every ReLU followed by a fake-quantized activation, batch norms kept
/// with the teacher's running statistics (frozen: the student runs in eval mode) and trainable
/// gamma/beta. The classifier's input is the average pool of the last quantized activation, not
/// quantized again: its integers are the pooled sums (see IntegerLinear). Each layer also adds the
/// rounding of the integer model's int32 bias, so the student computes what the integer model does.
///
/// State: the teacher's names, plus `input` (the image quantizer's fixed 8-bit range, applied only
/// with `quantizeInput`), `act` (after the stem's ReLU) and the blocks' `act1`/`act2`.
public final class QuantizedResNet: Layer {
    public let architecture: ResNetConfig
    public let quantization: QuantizationConfig
    /// 8 bits over the normalised pixel range, applied to the image when `quantization.quantizeInput`.
    public let input: FakeQuantize
    /// The integer model's image quantizer: `input`'s when the student quantizes its input, else
    /// 15 bits over the same range, a grid 4e-5 apart in normalised units (1/90 of a Fashion-MNIST
    /// pixel step) whose centred levels still fit Int16. A float-input student rounds its image to
    /// that grid, without clamping (a generator's images outside the pixel range pass as they are):
    /// numerically float, and on real images exactly the numbers the integer model reads.
    /// The stem's integer bias is expressed in its scale.
    public let imageQuantization: QuantizationParameters
    public let stem: QuantizedConvBN
    public let act: FakeQuantize
    public let blocks: [QuantizedBasicBlock]
    public let fc: QuantizedLinear
    private let layers: Sequential

    /// Wraps `model`'s layers (not a copy: `quantize(_:config:inputRange:)` copies first).
    /// - inputRange: the normalised pixel range (`normalisedPixelRange`).
    init(wrapping model: ResNet, config: QuantizationConfig, inputRange: ClosedRange<Float>) {
        architecture = model.config
        quantization = config
        let endBits = config.firstAndLastAt8Bits ? 8 : config.weightBits
        let activation = {
            FakeQuantize.activation(bits: $0, scheme: config.activationScheme, momentum: config.observerMomentum,
                                    range: config.activationRange)
        }
        // A fixed range, never calibrated (calibration switches only `activationQuantizers`): min/max.
        input = .activation(bits: 8, scheme: .perTensorAffine, momentum: config.observerMomentum)
        (input.observer as! MovingAverageMinMaxObserver).setRange(inputRange.lowerBound, inputRange.upperBound)
        let image = QuantizationParameters(bits: config.quantizeInput ? 8 : 15, minimum: [inputRange.lowerBound],
                                           maximum: [inputRange.upperBound], symmetric: false, axis: nil)
        imageQuantization = image
        stem = QuantizedConvBN(QuantizedConv2d(model.conv, bits: endBits, scheme: config.weightScheme, range: config.weightRange),
                               model.bn) { image.scale[0] }
        act = activation(config.activationBits)
        let teacherBlocks = model.layers.layers.map { $0 as! BasicBlock }
        var blocks: [QuantizedBasicBlock] = []
        for (i, block) in teacherBlocks.enumerated() {
            // The last activation is the classifier's input: 8 bits when the last layer keeps 8.
            let isLast = i == teacherBlocks.count - 1
            blocks.append(QuantizedBasicBlock(block, input: blocks.last?.act2 ?? act, weightBits: config.weightBits,
                                              outputBits: isLast && config.firstAndLastAt8Bits ? 8 : config.activationBits,
                                              config: config))
        }
        self.blocks = blocks
        layers = Sequential(blocks)
        fc = QuantizedLinear(model.fc, bits: endBits, scheme: config.weightScheme, range: config.weightRange)
    }

    public var children: [(String, any Layer)] {
        [("input", input), ("conv", stem.conv), ("bn", stem.bn), ("act", act), ("layers", layers), ("fc", fc)]
    }

    /// The last stage's output before pooling, quantized: [N, 64, H/4, W/4].
    public func features(_ x: Variable) -> Variable {
        precondition(x.value.rank == 4 && x.shape[1] == architecture.inChannels,
                     "quantized \(architecture.name) expects [N, \(architecture.inChannels), H, W], got \(x.shape)")
        precondition(!stem.bn.mode.usesBatchStatistics, "the quantized student runs its batch norms on running statistics: set eval mode")
        let image = quantization.quantizeInput ? input(x) : straightThrough(x, value: imageQuantization.roundedToGrid(x.value))
        return layers(act(relu(stem.forward(image))))
    }

    /// Logits from `features`: the pooled features through the classifier, plus the rounding of
    /// its integer bias (whose unit is the last activation's scale / pooled positions * weight scale).
    public func classify(_ features: Variable) -> Variable {
        let logits = fc(flatten(globalAveragePool(features)))
        let last = blocks.last?.act2 ?? act
        let positions = Float(features.shape[2] * features.shape[3])
        let weight = fc.weightFakeQuant.quantizationParameters
        let unit = last.quantizationParameters.scale[0] / positions
        let units = (0..<logits.shape[1]).map { unit * weight.scale[weight.axis == nil ? 0 : $0] }
        let bias = fc.linear.bias?.value.scalars ?? [Float](repeating: 0, count: units.count)
        return straightThrough(logits, value: logits.value.addingChannelBias(biasRoundingCorrection(bias, units: units)))
    }

    /// - x: [N, inChannels, H, W]. Returns logits [N, classes].
    public func forward(_ x: Variable) -> Variable { classify(features(x)) }

    /// The activation quantizers that calibration sets, with their state names (not `input`,
    /// whose range is fixed).
    public var activationQuantizers: [(String, FakeQuantize)] {
        var out: [(String, FakeQuantize)] = [("act", act)]
        for (i, b) in blocks.enumerated() { out += [("layers.\(i).act1", b.act1), ("layers.\(i).act2", b.act2)] }
        return out
    }

    /// Every convolution with the batch norm after it, with the convolution's state name, in forward order.
    public var quantizedConvBNBlocks: [(String, QuantizedConvBN)] {
        var out: [(String, QuantizedConvBN)] = [("conv", stem)]
        for (i, b) in blocks.enumerated() {
            out += [("layers.\(i).c1", b.block1), ("layers.\(i).c2", b.block2)]
            if let sc = b.shortcut { out.append(("layers.\(i).sc.0", sc)) }
        }
        return out
    }

    public var batchNorms: [BatchNorm2d] { allLayers().compactMap { $0 as? BatchNorm2d } }

    /// The conv+BN blocks follow the model's mode: eval (fake-quantize the conv weight, BN after)
    /// or tune (fake-quantize the folded weight, one convolution; `QuantizedConvBN`).
    public func didSetMode(_ mode: Mode) {
        for (_, block) in quantizedConvBNBlocks { block.mode = mode }
    }

    /// How the conv+BN blocks run: `.eval` (the conversion's default) or `.tune`. Calibration
    /// keeps it, the student file records it, and the integer export follows it.
    public var convBNMode: Mode { stem.mode }

    /// Sets eval or tune mode after checking that every block can run in it; train mode (the
    /// student's batch norms keep the teacher's statistics) and deploy mode (the deployed student
    /// is the integer model) are errors. Nothing changes on failure.
    public func setConvBNMode(_ mode: Mode) throws {
        guard mode == .eval || mode == .tune else {
            throw ConvBNModeError(description: "the quantized student runs its conv+BN blocks in eval or tune mode, not \(mode.rawValue)")
        }
        if mode == .tune {
            for (name, block) in quantizedConvBNBlocks {
                if !block.bn.tracksRunningStatistics || block.bn.weight == nil || block.bn.bias == nil {
                    throw ConvBNModeError(description: "tune mode does not apply to block '\(name)': "
                        + (block.bn.tracksRunningStatistics ? "its batch norm has no affine parameters"
                                                            : "its batch norm keeps no running statistics"))
                }
            }
        }
        setMode(mode)
    }
}
