/// How a model's layers compute. Batch norm is where the modes differ:
/// - train: batch statistics, running statistics updated;
/// - eval: running statistics, nothing updated, gradients still flow;
/// - tune: as eval, with conv + BN folded into one conv at every forward (ConvBN blocks);
/// - deploy: BN folded once into new conv parameters.
public enum Mode: String, CaseIterable, Codable, Sendable {
    case train, eval, tune, deploy

    /// Whether batch norm normalises with batch statistics.
    public var usesBatchStatistics: Bool { self == .train }
}
