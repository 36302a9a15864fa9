/// What a quantized student is: bit widths, schemes and which layers keep 8 bits. Saved in the
/// student's file (metadata key `acq_dist_quantization`) so that loading rebuilds the same student.
public struct QuantizationConfig: Codable, Equatable, Sendable {
    public static let bitRange = 2...8

    public var weightBits: Int
    public var activationBits: Int
    /// Weights: per output channel (axis 0) asymmetric by default.
    public var weightScheme: QScheme = .perChannelAffine(axis: 0)
    /// Activations: per tensor (a per-channel activation scale cannot be summed over input
    /// channels in an integer convolution), asymmetric by default.
    public var activationScheme: QScheme = .perTensorAffine
    /// Keeps the first conv's and the classifier's weights, and the classifier's input, at 8 bits
    /// (the other common convention); off by default: every layer at the same width (GDFQ).
    public var firstAndLastAt8Bits = false
    /// Quantizes the input image to 8 bits over the normalised pixel range (what the integer model
    /// does); off by default, as method.md section 3: the input image is not quantized.
    public var quantizeInput = false
    /// Momentum of the activation ranges' moving average.
    public var observerMomentum: Float = 0.9
    /// How weight ranges are chosen at every forward: min/max (method.md section 3, the default)
    /// or clipped to the least quantization squared error per channel (`MSEObserver`).
    public var weightRange: RangeMethod = .minMax
    /// How activation ranges are chosen: the EMA of batch min/max (the default) or, when
    /// calibration ends, the least-squared-error range over every calibration value
    /// (`HistogramMSEObserver`).
    public var activationRange: RangeMethod = .minMax

    public init(weightBits: Int, activationBits: Int) {
        self.weightBits = weightBits
        self.activationBits = activationBits
    }

    /// "W4A4", with "-8bit-ends" when the first and last layers keep 8 bits, "-mse-weights" and
    /// "-mse-activations" for MSE ranges.
    public var name: String {
        "W\(weightBits)A\(activationBits)" + (firstAndLastAt8Bits ? "-8bit-ends" : "")
            + (weightRange == .mse ? "-mse-weights" : "") + (activationRange == .mse ? "-mse-activations" : "")
    }

    /// Throws the first problem, naming the command-line option that sets it.
    public func validate() throws {
        for (option, bits) in [("--wbits", weightBits), ("--abits", activationBits)] where !Self.bitRange.contains(bits) {
            throw QuantizationError.bitsOutOfRange(option: option, bits: bits)
        }
        if let axis = weightScheme.axis, axis != 0 {
            throw QuantizationError.unsupportedScheme(option: "weight scheme", scheme: "\(weightScheme)",
                                                      reason: "weights are quantized per output channel, axis 0")
        }
        if activationScheme.axis != nil {
            throw QuantizationError.unsupportedScheme(option: "activation scheme", scheme: "\(activationScheme)",
                                                      reason: "activations are quantized per tensor")
        }
        guard observerMomentum >= 0 && observerMomentum < 1 else {
            throw QuantizationError.badOption(option: "observer momentum", value: "\(observerMomentum)",
                                              reason: "must be in [0, 1)")
        }
    }
}

extension QuantizationConfig {
    private enum CodingKeys: String, CodingKey {
        case weightBits, activationBits, weightScheme, activationScheme, firstAndLastAt8Bits, quantizeInput
        case observerMomentum, weightRange, activationRange
    }

    /// Decodes a configuration; the range methods are optional, min/max when absent (student
    /// files written before they existed).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(weightBits: try c.decode(Int.self, forKey: .weightBits),
                  activationBits: try c.decode(Int.self, forKey: .activationBits))
        weightScheme = try c.decode(QScheme.self, forKey: .weightScheme)
        activationScheme = try c.decode(QScheme.self, forKey: .activationScheme)
        firstAndLastAt8Bits = try c.decode(Bool.self, forKey: .firstAndLastAt8Bits)
        quantizeInput = try c.decode(Bool.self, forKey: .quantizeInput)
        observerMomentum = try c.decode(Float.self, forKey: .observerMomentum)
        weightRange = try c.decodeIfPresent(RangeMethod.self, forKey: .weightRange) ?? .minMax
        activationRange = try c.decodeIfPresent(RangeMethod.self, forKey: .activationRange) ?? .minMax
    }
}
