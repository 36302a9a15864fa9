/// How a tensor's quantization range is shared and centred, in torch.ao's vocabulary.
///
/// Affine schemes map [min, max] (widened to contain 0) onto all 2^b levels; symmetric ones map
/// [-max|x|, max|x|] onto the 2^b - 1 levels around a fixed middle zero point. Per-channel
/// schemes keep one range per index of `axis` (output channels: axis 0 of OIHW and [out, in]).
public enum QScheme: Codable, Equatable, Sendable, CustomStringConvertible {
    case perTensorAffine
    case perTensorSymmetric
    case perChannelAffine(axis: Int)
    case perChannelSymmetric(axis: Int)

    public var isSymmetric: Bool {
        switch self {
        case .perTensorSymmetric, .perChannelSymmetric: return true
        case .perTensorAffine, .perChannelAffine: return false
        }
    }

    /// The channel axis of a per-channel scheme; nil for per-tensor.
    public var axis: Int? {
        switch self {
        case .perTensorAffine, .perTensorSymmetric: return nil
        case let .perChannelAffine(axis), let .perChannelSymmetric(axis): return axis
        }
    }

    public var description: String {
        switch self {
        case .perTensorAffine: return "per_tensor_affine"
        case .perTensorSymmetric: return "per_tensor_symmetric"
        case let .perChannelAffine(axis): return "per_channel_affine(axis \(axis))"
        case let .perChannelSymmetric(axis): return "per_channel_symmetric(axis \(axis))"
        }
    }
}
