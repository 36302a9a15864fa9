import Autodiff
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// The GDFQ generator (Xu et al. 2020, inherited from the ACGAN generator of PyTorch-GAN), with
/// ACQ's position condition as one extra channel:
/// z * E(y) -> linear to 128 x s x s -> BN -> [concat heat map of p] -> up x2 -> conv 3x3 ->
/// BN(eps 0.8) -> LeakyReLU(0.2) -> up x2 -> conv 3x3 to 64 -> BN(eps 0.8) -> LeakyReLU(0.2) ->
/// conv 3x3 to C -> tanh -> BN(affine-free), s = image size / 4. Every BN uses batch statistics
/// (across ranks when given a reducer), always.
/// With the embedding condition (method.md section 5's option) the position enters the input
/// instead: z * E(y) * (1 + MLP(p)), MLP = linear 2 -> 64, ReLU, linear 64 -> latent.
public struct GeneratorConfig: Codable, Equatable, Sendable {
    public var latent = 100
    public var classes = 10
    public var channels = 1
    public var imageSize = 28
    /// GDFQ's eps of the two inner BNs (a GAN-codebase value; the default keeps it).
    public var innerEps: Float = 0.8
    /// How the position condition enters: a heat-map channel, or none (plain GDFQ).
    public var condition: PositionCondition = .heatMap
    /// Standard deviation of the heat map in [-1, 1] coordinates.
    public var heatMapStd: Float = 0.25

    public init() {}
    public var baseSize: Int { imageSize / 4 }
}

public enum PositionCondition: String, Codable, Sendable, CaseIterable {
    /// No position input (GDFQ).
    case none
    /// A Gaussian bump at p, one extra channel after the first BN.
    case heatMap = "heatmap"
    /// z * E(y) * (1 + MLP(p)): the position modulates the generator's input.
    case embedding

    /// Whether the generator takes positions at all.
    public var takesPositions: Bool { self != .none }
}

/// The embedding condition's MLP: linear 2 -> hidden, ReLU, linear hidden -> latent, named as
/// PyTorch's `nn.Sequential(Linear, ReLU, Linear)` (`mlp.0.*`, `mlp.2.*`).
public final class PositionMLP: Layer {
    public static let hidden = 64
    public let first: Linear, second: Linear

    public init(latent: Int, seed: UInt64) {
        first = Linear(2, PositionMLP.hidden, seed: seed)
        second = Linear(PositionMLP.hidden, latent, seed: seed &+ 1)
    }

    public var children: [(String, any Layer)] { [("0", first), ("2", second)] }

    /// - p: [N, 2]. Returns [N, latent].
    public func forward(_ p: Variable) -> Variable { second(relu(first(p))) }
}

public final class Generator: Layer {
    public let config: GeneratorConfig
    public let labelEmbedding: Parameter
    public let l1: Linear
    public let bn0: BatchNorm2d
    public let conv1: Conv2d, bn1: BatchNorm2d
    public let conv2: Conv2d, bn2: BatchNorm2d
    public let conv3: Conv2d, bn3: BatchNorm2d
    /// The embedding condition's MLP (nil otherwise).
    public let positionMLP: PositionMLP?

    public init(_ config: GeneratorConfig, seed: UInt64 = 0) {
        precondition(config.imageSize % 4 == 0, "generator image size must be a multiple of 4, got \(config.imageSize)")
        self.config = config
        let s = config.baseSize
        labelEmbedding = Parameter(Tensor.randomNormal([config.classes, config.latent], seed: seed))
        l1 = Linear(config.latent, 128 * s * s, seed: seed &+ 1)
        bn0 = BatchNorm2d(128)
        let extra = config.condition == .heatMap ? 1 : 0
        conv1 = Conv2d(128 + extra, 128, kernel: 3, padding: 1, seed: seed &+ 2)
        bn1 = BatchNorm2d(128, eps: config.innerEps)
        conv2 = Conv2d(128, 64, kernel: 3, padding: 1, seed: seed &+ 3)
        bn2 = BatchNorm2d(64, eps: config.innerEps)
        conv3 = Conv2d(64, config.channels, kernel: 3, padding: 1, seed: seed &+ 4)
        bn3 = BatchNorm2d(config.channels, affine: false)
        positionMLP = config.condition == .embedding ? PositionMLP(latent: config.latent, seed: seed &+ 5) : nil
        for bn in [bn0, bn1, bn2, bn3] { bn.didSetMode(.train) }
    }

    public var children: [(String, any Layer)] {
        [("l1", l1), ("bn0", bn0), ("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2),
         ("conv3", conv3), ("bn3", bn3)] + (positionMLP.map { [("mlp", $0)] } ?? [])
    }

    /// The label embedding is a bare parameter named as PyTorch's `label_emb.weight`.
    public var ownState: [(String, Parameter)] { [("label_emb.weight", labelEmbedding)] }

    /// The generator's BNs always use batch statistics, whatever the model-wide mode.
    public func didSetMode(_ mode: Mode) {}

    /// The biases of convolutions that a batch norm follows directly (conv1, conv2): the batch
    /// norm subtracts any per-channel constant, so their gradient is zero, and what backward
    /// computes for them is rounding noise, which Adam would scale up into steps of about the
    /// learning rate in a direction set by the reduction order (the number of ranks).
    public var biasesBeforeBatchNorm: [Parameter] { [conv1.bias, conv2.bias].compactMap { $0 } }

    /// Makes every BN's statistics those of the global batch.
    public func setReducer(_ reducer: BatchStatisticsReducer?) {
        for bn in [bn0, bn1, bn2, bn3] { bn.reducer = reducer }
    }

    /// - z: [N, latent]; labels: N classes; p: [N, 2] positions in [-1, 1] (needed with a
    ///   condition). Returns images [N, channels, size, size].
    public func generate(z: Variable, labels: [Int], positions p: Tensor?) -> Variable {
        precondition(z.value.rank == 2 && z.shape[1] == config.latent && z.shape[0] == labels.count,
                     "generator: z \(z.shape) for \(labels.count) labels, latent \(config.latent)")
        precondition(!config.condition.takesPositions || p?.shape == [labels.count, 2],
                     "generator with a \(config.condition.rawValue) condition needs positions [\(labels.count), 2], got \(p.map { "\($0.shape)" } ?? "none")")
        let n = labels.count, s = config.baseSize
        var input = embedding(labelEmbedding.variable, indices: labels) * z
        if let positionMLP, let p { input = input * (positionMLP(Variable(p)) + 1) }
        var h = bn0(reshape(l1(input), [n, 128, s, s]))
        if config.condition == .heatMap, let p {
            h = concatenate(channels: [h, Variable(Generator.heatMap(p, size: s, std: config.heatMapStd))])
        }
        h = leakyRelu(bn1(conv1(upsampleNearest2x(h))), slope: 0.2)
        h = leakyRelu(bn2(conv2(upsampleNearest2x(h))), slope: 0.2)
        return bn3(tanh(conv3(h)))
    }

    public func forward(_ x: Variable) -> Variable {
        preconditionFailure("Generator takes (z, labels, positions): use generate(z:labels:positions:)")
    }

    /// exp(-((u_j - px)^2 + (v_i - py)^2) / (2 std^2)) on an s x s grid, u = v = linspace(-1, 1, s)
    /// (u along the width, v along the height). - p: [N, 2]. Returns [N, 1, s, s].
    public static func heatMap(_ p: Tensor, size s: Int, std: Float) -> Tensor {
        precondition(p.rank == 2 && p.shape[1] == 2, "positions must be [N, 2], got \(p.shape)")
        let n = p.shape[0]
        let grid = (0..<s).map { s == 1 ? 0 : -1 + 2 * Float($0) / Float(s - 1) }
        var out = Tensor(uninitializedShape: [n, 1, s, s])
        let k = 1 / (2 * std * std)
        out.withUnsafeMutableBufferPointer { o in
            for b in 0..<n {
                let (px, py) = (p[flat: 2 * b], p[flat: 2 * b + 1])
                for i in 0..<s {
                    for j in 0..<s {
                        let dx = grid[j] - px, dy = grid[i] - py
                        o[(b * s + i) * s + j] = expf(-(dx * dx + dy * dy) * k)
                    }
                }
            }
        }
        return out
    }
}
