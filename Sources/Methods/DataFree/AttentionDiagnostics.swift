import Autodiff
import Checkpoint
import Data
import Foundation
import NN
import Safetensors
import TensorCore

/// ACQ's two diagnostics (method.md section 5) of a set of images, measured with the frozen
/// teacher; measurement only, nothing trains.
///
/// - `centreSpread`: the within-class spread of attention centres. For each class k with at
///   least two images, with centres c_i in [-1, 1]^2 and their mean m_k, the root-mean-square
///   Euclidean distance sqrt((1/n_k) sum_i ||c_i - m_k||^2); then the mean of that over those
///   classes (a class with a single image has no spread to measure and is left out). ACQ's
///   paired loss should raise it.
/// - `attentionGap`: the eval/train attention gap, L_cons as the consistency term computes it,
///   mean over b, i, j of (Â_eval - Â_train)^2, with Â_train from batch statistics of the image's
///   own batch (of `batchSize` images; running statistics untouched); averaged over all images.
///   ACQ's consistency term should lower it.
/// - `conditionFit`: for a generator with ACQ's position condition, how far the centres follow
///   the positions they were asked for (nil for real images and unconditioned generators).
public struct AttentionDiagnostics: Equatable, Sendable {
    public var samples: Int
    public var batchSize: Int
    public var centreSpread: Double
    public var attentionGap: Double
    public var conditionFit: ConditionFit?
}

/// How well attention centres c follow requested positions p (both [N, 2]).
/// - `error`: mean over images of ||c - p||^2, the attention-centre matching term's value.
/// - `slope`: the least-squares slope of c on p, both axes pooled:
///   sum((c - mean c) * (p - mean p)) / sum((p - mean p)^2). 1 when the centres move with the
///   positions, 0 when they ignore them.
public struct ConditionFit: Equatable, Sendable {
    public var error: Double
    public var slope: Double

    public init(centres: Tensor, positions: Tensor) {
        precondition(centres.shape == positions.shape && centres.rank == 2 && centres.shape[1] == 2 && centres.shape[0] >= 2,
                     "condition fit of [N, 2] centres and positions (N >= 2), got \(centres.shape) and \(positions.shape)")
        let n = centres.shape[0]
        var squared = 0.0, covariance = 0.0, variance = 0.0
        for axis in 0..<2 {
            let c = (0..<n).map { Double(centres[flat: 2 * $0 + axis]) }, p = (0..<n).map { Double(positions[flat: 2 * $0 + axis]) }
            let (mc, mp) = (c.reduce(0, +) / Double(n), p.reduce(0, +) / Double(n))
            for i in 0..<n {
                squared += (c[i] - p[i]) * (c[i] - p[i])
                covariance += (c[i] - mc) * (p[i] - mp)
                variance += (p[i] - mp) * (p[i] - mp)
            }
        }
        error = squared / Double(n)
        slope = variance > 0 ? covariance / variance : 0
    }
}

/// One batch to diagnose: images [N, C, H, W], their labels, and the positions a conditioned
/// generator was asked for ([N, 2]; nil for real images and unconditioned generators).
public struct DiagnosticBatch {
    public var images: Tensor
    public var labels: [Int]
    public var positions: Tensor?

    public init(images: Tensor, labels: [Int], positions: Tensor? = nil) {
        (self.images, self.labels, self.positions) = (images, labels, positions)
    }
}

/// The attention measurements of one batch: what the ACQ losses would see for these images.
public struct AttentionMeasurement {
    /// Attention centres of the eval-mode teacher: [N, 2] as (x, y).
    public let centres: Tensor
    /// The consistency term's value on this batch: mean over b, i, j of (Â_eval - Â_train)^2.
    public let gap: Double

    /// - images: [N, C, H, W], one batch (its batch statistics are the train pass's).
    public init(teacher: ResNet, images: Tensor) {
        (centres, gap) = withoutGradients {
            let x = Variable(images)
            let eval = Attention(features: teacherPass(teacher, x).features)
            let train = Attention(features: teacherPass(teacher, x, batchStatistics: true).features)
            return (eval.centre.value, Double(attentionConsistencyLoss(eval: eval, train: train).value.item))
        }
    }
}

/// The within-class spread of attention centres (`AttentionDiagnostics.centreSpread`).
/// - centres: [N, 2]; labels: N classes. Nil when no class has two images.
public func centreSpread(centres: Tensor, labels: [Int]) -> Double? {
    precondition(centres.rank == 2 && centres.shape[1] == 2 && centres.shape[0] == labels.count,
                 "centre spread of [N, 2] centres with N labels, got \(centres.shape) and \(labels.count) labels")
    var byClass: [Int: [(Double, Double)]] = [:]
    for (i, label) in labels.enumerated() {
        byClass[label, default: []].append((Double(centres[flat: 2 * i]), Double(centres[flat: 2 * i + 1])))
    }
    let spreads = byClass.values.filter { $0.count >= 2 }.map { points -> Double in
        let n = Double(points.count)
        let mx = points.reduce(0) { $0 + $1.0 } / n, my = points.reduce(0) { $0 + $1.1 } / n
        let squared = points.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) + ($1.1 - my) * ($1.1 - my) }
        return (squared / n).squareRoot()
    }
    return spreads.isEmpty ? nil : spreads.reduce(0, +) / Double(spreads.count)
}

/// The diagnostics over `batches` batches of `batchSize` images, batch b from `batch(b)`
/// (images [batchSize, C, H, W], their labels, and the positions asked of a conditioned generator).
public func attentionDiagnostics(teacher: ResNet, batches: Int, batchSize: Int,
                                 batch: (Int) throws -> DiagnosticBatch) throws -> AttentionDiagnostics {
    guard batches >= 1 && batchSize >= 2 else {
        throw RunError("attention diagnostics need at least one batch of at least 2 images (batch statistics), got \(batches) of \(batchSize)")
    }
    var centres: [Float] = [], labels: [Int] = [], positions: [Float] = []
    var gapSum = 0.0
    var conditioned: Bool?
    for b in 0..<batches {
        let next = try batch(b)
        let (images, batchLabels) = (next.images, next.labels)
        precondition(images.shape.first == batchSize && batchLabels.count == batchSize
                     && next.positions.map { $0.shape == [batchSize, 2] } != false,
                     "diagnostic batch \(b): images \(images.shape), \(batchLabels.count) labels, positions \(next.positions?.shape ?? []), batch size \(batchSize)")
        precondition(conditioned == nil || conditioned == (next.positions != nil), "diagnostic batch \(b): positions in some batches only")
        conditioned = next.positions != nil
        let m = AttentionMeasurement(teacher: teacher, images: images)
        centres += m.centres.scalars
        labels += batchLabels
        if let p = next.positions { positions += p.scalars }
        // The batch's value is a mean over its images: weight it by their number.
        gapSum += m.gap * Double(batchSize)
    }
    guard let spread = centreSpread(centres: Tensor(shape: [labels.count, 2], scalars: centres), labels: labels) else {
        throw RunError("no class has two of the \(labels.count) images: the centre spread needs more samples")
    }
    let fit = conditioned == true ? ConditionFit(centres: Tensor(shape: [labels.count, 2], scalars: centres),
                                                 positions: Tensor(shape: [labels.count, 2], scalars: positions)) : nil
    return AttentionDiagnostics(samples: labels.count, batchSize: batchSize, centreSpread: spread,
                                attentionGap: gapSum / Double(labels.count), conditionFit: fit)
}

/// The first `batches * batchSize` images of a real data set, in order, with their true labels.
public func realDiagnosticBatch(_ data: Dataset, batchSize: Int) -> (Int) -> DiagnosticBatch {
    { b in
        let (images, labels) = data.batch(indices: Array((b * batchSize)..<((b + 1) * batchSize)))
        return DiagnosticBatch(images: images, labels: labels)
    }
}

/// A generator written by `acq-dist datafree` (`generator.safetensors`, role "generator"),
/// rebuilt as its run built it, with the position range its conditions were drawn from.
public struct TrainedGenerator {
    public static let role = "generator"
    public let generator: Generator
    public let metadata: ModelMetadata
    /// Half-width of the square the run drew positions from.
    public let positionRange: Float
    /// False for files written before runs recorded their condition and position range: the
    /// condition then comes from the file's tensors and the range is the default.
    public let recordsCondition: Bool

    public init(contentsOf url: URL) throws {
        let file = try SafetensorsFile.read(contentsOf: url)
        metadata = try ModelFile.metadata(of: file, expectedRole: TrainedGenerator.role)
        var config = GeneratorConfig()
        if let size = metadata.imageShape.last { config.imageSize = size }
        config.classes = metadata.architecture.classes
        config.channels = metadata.architecture.inChannels
        if let name = metadata.notes["condition"] {
            guard let condition = PositionCondition(rawValue: name) else {
                throw StateDictError.badMetadata(file: file.source, key: "notes.condition", value: name)
            }
            config.condition = condition
        } else {
            // The heat map is one extra input channel of conv1 (128 without it); the embedding
            // condition has the MLP's tensors.
            config.condition = file["conv1.weight"].map { $0.rank == 4 && $0.shape[1] == 129 } == true ? .heatMap
                : file["mlp.0.weight"] != nil ? .embedding : .none
        }
        if let range = metadata.notes["position_range"] {
            guard let value = Float(range), value > 0 && value <= 1 else {
                throw StateDictError.badMetadata(file: file.source, key: "notes.position_range", value: range)
            }
            positionRange = value
        } else {
            positionRange = DataFreeConfig().positionRange
        }
        recordsCondition = metadata.notes["condition"] != nil && metadata.notes["position_range"] != nil
        generator = Generator(config)
        try StateDict.load(file, into: generator)
    }

    /// Batch b of generated images: noise, labels (uniform, shared by pairs) and positions
    /// from `SyntheticBatch`'s counter-based streams, positions only with a position condition.
    /// The draws come from steps 10^9 + b, far past any training run's steps, so they are not
    /// the batches the generator trained on. Returns images [batchSize, C, H, W], labels and
    /// (with a position condition) the positions asked for.
    public func batch(_ b: Int, batchSize: Int, seed: UInt64) -> DiagnosticBatch {
        let draws = SyntheticBatch(step: 1_000_000_000 + b, range: 0..<batchSize, latent: generator.config.latent,
                                   classes: generator.config.classes, positionRange: positionRange, seed: seed)
        let positions = generator.config.condition.takesPositions ? draws.positions : nil
        let images = withoutGradients { generator.generate(z: Variable(draws.noise), labels: draws.labels, positions: positions) }
        return DiagnosticBatch(images: images.value, labels: draws.labels, positions: positions)
    }
}
