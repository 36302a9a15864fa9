import Autodiff
import TensorCore

/// The CIFAR-style ResNet family (He et al. 2016, section 4.2): a 3x3 stem with 16 channels,
/// three stages of BasicBlocks with 16/32/64 channels (stride 2 entering stages 2 and 3, with a
/// 1x1 conv + BN projection shortcut there), global average pooling and a linear classifier.
/// Depth 6n+2: ResNet-20 (n=3), 32, 44, 56.
public struct ResNetConfig: Codable, Equatable, Sendable {
    public var depth: Int
    public var inChannels: Int
    public var classes: Int

    public init(depth: Int = 20, inChannels: Int = 1, classes: Int = 10) {
        self.depth = depth
        self.inChannels = inChannels
        self.classes = classes
    }

    public static let supportedDepths = [20, 32, 44, 56]
    public var blocksPerStage: Int { (depth - 2) / 6 }
    public var name: String { "resnet\(depth)" }
}

/// conv3x3-BN-ReLU-conv3x3-BN, plus the identity or a projection, then ReLU.
/// Names as the reference: c1, b1, c2, b2, sc.0 (1x1 conv), sc.1 (BN).
public final class BasicBlock: Layer, ConvBNOwner {
    public let c1: Conv2d, b1: BatchNorm2d, c2: Conv2d, b2: BatchNorm2d
    public let shortcut: Sequential?
    let block1: ConvBN, block2: ConvBN, shortcutBlock: ConvBN?

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int, seed: UInt64) {
        let initialization = WeightInitialization.kaimingNormalFanOut
        c1 = Conv2d(inChannels, outChannels, kernel: 3, stride: stride, padding: 1, bias: false,
                    seed: seed &+ 1, initialization: initialization)
        b1 = BatchNorm2d(outChannels)
        c2 = Conv2d(outChannels, outChannels, kernel: 3, stride: 1, padding: 1, bias: false,
                    seed: seed &+ 2, initialization: initialization)
        b2 = BatchNorm2d(outChannels)
        if stride != 1 || inChannels != outChannels {
            shortcut = Sequential([
                Conv2d(inChannels, outChannels, kernel: 1, stride: stride, bias: false,
                       seed: seed &+ 3, initialization: initialization),
                BatchNorm2d(outChannels),
            ])
        } else {
            shortcut = nil
        }
        block1 = ConvBN(c1, b1)
        block2 = ConvBN(c2, b2)
        shortcutBlock = shortcut.map { ConvBN($0.layers[0] as! Conv2d, $0.layers[1] as! BatchNorm2d) }
    }

    public var ownConvBNBlocks: [(String, ConvBN)] {
        [("c1", block1), ("c2", block2)] + (shortcutBlock.map { [("sc.0", $0)] } ?? [])
    }

    public func didSetMode(_ mode: Mode) {
        for (_, b) in ownConvBNBlocks { b.mode = mode }
    }

    /// Inference without a graph runs each conv+BN as one convolution with its BN, shortcut and
    /// ReLU applied as the output is written (`ConvBN.foldedForInference`).
    var runsFusedInference: Bool {
        block1.runsFusedInference && block2.runsFusedInference && (shortcutBlock?.runsFusedInference ?? true)
    }

    /// The block's three convolutions folded for inference, once for any number of chunks.
    func foldedForInference() -> FoldedBlock {
        FoldedBlock(c1: block1.foldedForInference(), c2: block2.foldedForInference(),
                    shortcut: shortcutBlock?.foldedForInference())
    }

    public var children: [(String, any Layer)] {
        var c: [(String, any Layer)] = [("c1", c1), ("b1", b1), ("c2", c2), ("b2", b2)]
        if let shortcut { c.append(("sc", shortcut)) }
        return c
    }

    /// - x: [N, in, H, W]. Returns [N, out, H/stride, W/stride].
    public func forward(_ x: Variable) -> Variable {
        if runsFusedInference { return Variable(foldedForInference()(x.value)) }
        let out = block2.forward(block1.forward(x, relu: true))
        return addReLU(out, shortcutBlock?.forward(x) ?? x)
    }
}

/// A BasicBlock folded for inference: relu(c2(relu(c1(x))) + shortcut(x)) as three convolutions.
struct FoldedBlock {
    let c1: FoldedConvolution, c2: FoldedConvolution, shortcut: FoldedConvolution?

    /// - x: [N, in, H, W]. Returns [N, out, H/stride, W/stride].
    func callAsFunction(_ x: Tensor) -> Tensor {
        c2(c1(x, relu: true), residual: shortcut?(x, relu: false) ?? x, relu: true)
    }
}

/// The stem and stages of a ResNet folded for inference.
struct FoldedFeatures {
    let stem: FoldedConvolution
    let blocks: [FoldedBlock]

    /// - x: [N, inChannels, H, W]. Returns the last stage's output [N, 64, H/4, W/4].
    func features(_ x: Tensor) -> Tensor {
        blocks.reduce(stem(x, relu: true)) { h, block in block(h) }
    }
}

public final class ResNet: Layer, ConvBNOwner {
    public let config: ResNetConfig
    public let conv: Conv2d
    public let bn: BatchNorm2d
    let stem: ConvBN
    public let layers: Sequential
    public let fc: Linear

    public init(_ config: ResNetConfig, seed: UInt64 = 0) {
        precondition(ResNetConfig.supportedDepths.contains(config.depth),
                     "ResNet depth must be one of \(ResNetConfig.supportedDepths), got \(config.depth)")
        self.config = config
        conv = Conv2d(config.inChannels, 16, kernel: 3, padding: 1, bias: false, seed: seed,
                      initialization: .kaimingNormalFanOut)
        bn = BatchNorm2d(16)
        var blocks: [any Layer] = []
        var channels = 16
        for (stage, width) in [16, 32, 64].enumerated() {
            for i in 0..<config.blocksPerStage {
                let stride = (stage > 0 && i == 0) ? 2 : 1
                blocks.append(BasicBlock(channels, width, stride: stride, seed: seed &+ UInt64(16 * (blocks.count + 1))))
                channels = width
            }
        }
        layers = Sequential(blocks)
        fc = Linear(64, config.classes, seed: seed &+ 7919)
        stem = ConvBN(conv, bn)
    }

    public var ownConvBNBlocks: [(String, ConvBN)] { [("conv", stem)] }

    public func didSetMode(_ mode: Mode) { stem.mode = mode }

    public var children: [(String, any Layer)] {
        [("conv", conv), ("bn", bn), ("layers", layers), ("fc", fc)]
    }

    /// The last stage's output before pooling: [N, 64, H/4, W/4] (what attention maps read).
    public func features(_ x: Variable) -> Variable {
        precondition(x.value.rank == 4 && x.shape[1] == config.inChannels,
                     "\(config.name) expects [N, \(config.inChannels), H, W], got \(x.shape)")
        if runsFusedInference {
            let folded = foldedForInference()
            return Variable(inChunks(x.value) { folded.features($0) })
        }
        return layers(stem.forward(x, relu: true))
    }

    public func classify(_ features: Variable) -> Variable {
        fc(flatten(globalAveragePool(features)))
    }

    /// - x: [N, inChannels, H, W]. Returns logits [N, classes].
    public func forward(_ x: Variable) -> Variable {
        precondition(x.value.rank == 4 && x.shape[1] == config.inChannels,
                     "\(config.name) expects [N, \(config.inChannels), H, W], got \(x.shape)")
        if runsFusedInference {
            let folded = foldedForInference()
            return Variable(inChunks(x.value) { self.classify(Variable(folded.features($0))).value })
        }
        return classify(features(x))
    }

    /// Whether every conv+BN block runs as one fused convolution (`ConvBN.foldedForInference`) and the
    /// stages are BasicBlocks.
    var runsFusedInference: Bool {
        stem.runsFusedInference && layers.layers.allSatisfy { ($0 as? BasicBlock)?.runsFusedInference ?? false }
    }

    /// Images per chunk of fused inference. Measured at batch 128 on 2 threads: 16 and 32 run
    /// alike, 8 and 4 slower (more calls); 16 keeps a chunk's activations (at most 16 x 16 x 32
    /// x 32 floats, 1 MB) close to one core's L2 cache (2 MB here).
    static let inferenceChunk = 16

    /// Inference without a graph, a chunk of images at a time: each chunk runs through the whole
    /// network on one thread, so its activations stay in that core's cache instead of every
    /// layer streaming the whole batch through memory. The kernels compute each image on its
    /// own, so the values do not depend on the chunking.
    func inChunks(_ x: Tensor, _ body: @escaping (Tensor) -> Tensor) -> Tensor {
        let n = x.shape[0], size = Self.inferenceChunk
        let chunks = (n + size - 1) / size
        guard chunks > 1 else { return body(x) }
        var parts = [Tensor](repeating: Tensor.zeros([0]), count: chunks)
        parts.withUnsafeMutableBufferPointer { out in
            let out = out
            Compute.parallelItems(chunks) { i in
                // Gradient mode is task-local too: the pool's threads would see it on.
                out[i] = withoutGradients { body(x.rows((i * size)..<Swift.min(n, (i + 1) * size))) }
            }
        }
        return Tensor.concatenate(rows: parts)
    }

    /// Every conv+BN block folded once for a fused forward (`runsFusedInference`).
    func foldedForInference() -> FoldedFeatures {
        FoldedFeatures(stem: stem.foldedForInference(), blocks: layers.layers.map { ($0 as! BasicBlock).foldedForInference() })
    }

    /// All batch-norm layers in forward order.
    public var batchNorms: [BatchNorm2d] { allLayers().compactMap { $0 as? BatchNorm2d } }
}
