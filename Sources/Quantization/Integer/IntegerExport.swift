import NN
import TensorCore

extension IntegerResNet {
    /// Exports a calibrated student: its weight levels become the integer weights, with the
    /// batch norm that follows each convolution folded in (Tune-mode folding,
    /// w' = w * s and b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps)).
    ///
    /// Folding moves no weight off its grid: w' = s * (q - zp) * scale is the level q with scale
    /// |s| * scale per output channel (for s < 0 the levels are mirrored, q' = c - q and
    /// zp' = c - zp, with c = 2^b - 1, or 2 zp for symmetric schemes). So the integer model
    /// computes the student's own quantized weights, and a per-tensor weight scheme simply
    /// becomes per-channel scales sharing one zero point. The bias is rounded to int32 at scale
    /// inputScale * weightScale'[o], which is the one rounding the student does not simulate
    /// (below half an accumulator unit, far under an activation level).
    /// - imageShape: [C, H, W] of the inputs, which fixes the classifier's pooled positions.
    public init(exporting student: QuantizedResNet, imageShape: [Int], inputRange: ClosedRange<Float>) throws {
        try student.requireCalibrated(model: "the student")
        architecture = student.architecture
        self.imageShape = imageShape
        input = student.input?.quantizationParameters
            ?? QuantizationParameters(bits: 8, minimum: [inputRange.lowerBound], maximum: [inputRange.upperBound],
                                      symmetric: false, axis: nil)
        stem = try foldedConvolution("conv", student.conv, student.bn, input: input)
        stemActivation = student.act.quantizationParameters
        var blocks: [IntegerBasicBlock] = []
        var previous = stemActivation
        for (i, b) in student.blocks.enumerated() {
            let name = "layers.\(i)"
            let act1 = b.act1.quantizationParameters
            let block = IntegerBasicBlock(
                c1: try foldedConvolution("\(name).c1", b.c1, b.b1, input: previous),
                act1: act1,
                c2: try foldedConvolution("\(name).c2", b.c2, b.b2, input: act1),
                shortcut: try b.shortcut.map { try foldedConvolution("\(name).sc.0", $0.conv, $0.bn, input: previous) },
                act2: b.act2.quantizationParameters)
            blocks.append(block)
            previous = block.act2
        }
        self.blocks = blocks
        // Two stride-2 stages: the last stage has (H / 4) x (W / 4) positions (ceil, as the convs).
        let pooled = ((imageShape[1] + 3) / 4) * ((imageShape[2] + 3) / 4)
        fc = try integerClassifier(student.fc, input: previous, pooledPositions: pooled)
    }
}

/// The integer form of a fake-quantized convolution followed by an eval-mode batch norm.
func foldedConvolution(_ name: String, _ q: QuantizedConv2d, _ bn: BatchNorm2d,
                       input: QuantizationParameters) throws -> IntegerConv2d {
    let weight = q.conv.weight.value
    let (o, patch) = (weight.shape[0], weight.count / weight.shape[0])
    q.weightFakeQuant.observer.observe(weight)
    let params = q.weightFakeQuant.quantizationParameters
    var levels = params.quantize(weight)
    let perChannel = params.axis != nil
    let gamma = bn.weight?.value.scalars ?? [Float](repeating: 1, count: o)
    let beta = bn.bias?.value.scalars ?? [Float](repeating: 0, count: o)
    let (mean, variance) = (bn.runningMean.value.scalars, bn.runningVar.value.scalars)
    let convBias = q.conv.bias?.value.scalars ?? [Float](repeating: 0, count: o)
    var scales: [Float] = [], zeroPoints: [Int32] = [], bias: [Int32] = []
    for c in 0..<o {
        let s = gamma[c] / (variance[c] + bn.eps).squareRoot()
        var (scale, zp) = (params.scale[perChannel ? c : 0], params.zeroPoint[perChannel ? c : 0])
        if s < 0 {
            let mirror = q.weightFakeQuant.observer.scheme.isSymmetric ? 2 * zp : params.quantMax
            for i in (c * patch)..<((c + 1) * patch) { levels[i] = UInt8(mirror - Int32(levels[i])) }
            zp = mirror - zp
        }
        if s == 0 {
            // The folded channel is zero: every level at the zero point, the output is its bias.
            for i in (c * patch)..<((c + 1) * patch) { levels[i] = UInt8(zp) }
        } else {
            scale *= abs(s)
        }
        let folded = (convBias[c] - mean[c]) * s + beta[c]
        bias.append(try integerBias(folded, scale: input.scale[0] * scale, layer: name, channel: c))
        scales.append(scale)
        zeroPoints.append(zp)
    }
    let conv = IntegerConv2d(outChannels: o, inChannels: weight.shape[1], kernel: weight.shape[2],
                             stride: q.conv.stride, padding: q.conv.padding, weightBits: params.bits,
                             weightLevels: levels, weightScale: scales, weightZeroPoint: zeroPoints, bias: bias,
                             input: input)
    try checkAccumulator(conv.accumulatorBound, layer: name)
    return conv
}

/// The integer form of the fake-quantized classifier on pooled sums of `input` levels.
func integerClassifier(_ q: QuantizedLinear, input: QuantizationParameters, pooledPositions: Int) throws -> IntegerLinear {
    let weight = q.linear.weight.value
    let (o, i) = (weight.shape[0], weight.shape[1])
    q.weightFakeQuant.observer.observe(weight)
    let params = q.weightFakeQuant.quantizationParameters
    let perChannel = params.axis != nil
    let scales = (0..<o).map { params.scale[perChannel ? $0 : 0] }
    let zeroPoints = (0..<o).map { params.zeroPoint[perChannel ? $0 : 0] }
    let b = q.linear.bias?.value.scalars ?? [Float](repeating: 0, count: o)
    let bias = try (0..<o).map { c in
        try integerBias(b[c], scale: input.scale[0] / Float(pooledPositions) * scales[c], layer: "fc", channel: c)
    }
    let fc = IntegerLinear(outFeatures: o, inFeatures: i, weightBits: params.bits, weightLevels: params.quantize(weight),
                           weightScale: scales, weightZeroPoint: zeroPoints, bias: bias, input: input,
                           pooledPositions: pooledPositions)
    try checkAccumulator(fc.accumulatorBound, layer: "fc")
    return fc
}

/// round(value / scale) as an int32 the model file stores exactly (|b| <= 2^24: the file
/// reader holds every tensor as float32).
func integerBias(_ value: Float, scale: Float, layer: String, channel: Int) throws -> Int32 {
    let b = (value / scale).rounded(.toNearestOrEven)
    guard b.isFinite && abs(b) <= 16_777_216 else {
        throw QuantizationError.notExportable(layer: layer, reason: "the bias of channel \(channel) is \(value), \(b) units of its scale \(scale), beyond the 2^24 an int32 bias may hold here")
    }
    return Int32(b)
}

func checkAccumulator(_ bound: Int, layer: String) throws {
    guard bound < Int(Int32.max) else {
        throw QuantizationError.notExportable(layer: layer, reason: "its accumulator can reach \(bound), beyond int32")
    }
}
