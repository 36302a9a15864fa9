import Autodiff
import NN
import TensorCore

/// What the generator of a data-free method optimises: the plug-in point of GDFQ and ACQ.
/// Both share the runtime (`DataFreeTrainer`): sampling, the generator and student steps,
/// schedules, calibration and evaluation.
public protocol GeneratorObjective: Sendable {
    /// Whether the generator takes ACQ's position condition.
    var condition: PositionCondition { get }
    /// Whether the objective needs the teacher pass with batch statistics (ACQ's consistency).
    var needsBatchStatisticsPass: Bool { get }
    /// The weighted terms of the generator loss, by name (each logged on its own).
    func terms(_ context: GeneratorLossContext) -> [(name: String, weight: Float, loss: Variable)]
}

/// Everything a generator objective can use at one step.
public struct GeneratorLossContext {
    public let teacher: ResNet
    public let labels: [Int]
    public let noise: Tensor
    public let positions: Tensor?
    public let eval: TeacherPass
    public let train: TeacherPass?
}

/// GDFQ (Xu et al. 2020): L_G = CE(T(x), y) + 0.1 BNS.
public struct GDFQObjective: GeneratorObjective, Codable {
    public var bnsWeight: Float = 0.1
    public init() {}
    public var condition: PositionCondition { .none }
    public var needsBatchStatisticsPass: Bool { false }
    public func terms(_ c: GeneratorLossContext) -> [(name: String, weight: Float, loss: Variable)] {
        [("ce", 1, crossEntropy(c.eval.logits, labels: c.labels)),
         ("bns", bnsWeight, batchNormStatisticsLoss(c.eval, teacher: c.teacher))]
    }
}

/// ACQ (reconstructed, method.md section 5): GDFQ's terms plus attention-centre matching to the
/// position condition, the paired mode-seeking loss and the eval/train attention consistency.
/// A weight of 0 switches a term off (and the condition goes with `condition`).
public struct ACQObjective: GeneratorObjective, Codable {
    public var bnsWeight: Float = 0.1
    public var acmWeight: Float = 1
    public var pairWeight: Float = 0.1
    public var consistencyWeight: Float = 1
    public var condition: PositionCondition = .heatMap
    public init() {}
    public var needsBatchStatisticsPass: Bool { consistencyWeight != 0 }

    public func terms(_ c: GeneratorLossContext) -> [(name: String, weight: Float, loss: Variable)] {
        var out: [(name: String, weight: Float, loss: Variable)] = [
            ("ce", 1, crossEntropy(c.eval.logits, labels: c.labels)),
            ("bns", bnsWeight, batchNormStatisticsLoss(c.eval, teacher: c.teacher)),
        ]
        let attention = Attention(features: c.eval.features)
        if acmWeight != 0, let p = c.positions { out.append(("acm", acmWeight, attentionCentreLoss(attention, positions: p))) }
        if pairWeight != 0 { out.append(("pair", pairWeight, pairedLoss(attention, noise: c.noise))) }
        if consistencyWeight != 0, let train = c.train {
            out.append(("cons", consistencyWeight, attentionConsistencyLoss(eval: attention, train: Attention(features: train.features))))
        }
        return out
    }
}

/// The methods `acq-dist methods` lists: a closed set, each a generator objective.
public enum DataFreeMethod: String, CaseIterable, Codable, Sendable {
    case gdfq, acq

    public var summary: String {
        switch self {
        case .gdfq: return "GDFQ: generator loss CE + 0.1 BNS; student CE + distillation (T 20)"
        case .acq: return "ACQ: GDFQ + position condition (heat map), attention-centre matching, paired loss, eval/train consistency"
        }
    }
}
