import NN
import TensorCore

extension IntegerResNet {
    /// Exports a calibrated student: its weight levels become the integer weights, with the
    /// batch norm after each convolution folded in (`Folding`: w' = w * s, b' = (b - mean) * s + beta).
    ///
    /// Folding moves no weight off its grid: w' = s * (q - zp) * scale is the level q at scale
    /// |s| * scale per output channel (for s < 0 the levels are mirrored, q' = c - q and
    /// zp' = c - zp with c = 2^b - 1, or 2 zp for symmetric schemes), so the integer model uses
    /// the student's own quantized weights, and a per-tensor weight scheme becomes per-channel
    /// scales. The bias becomes round(b' / (inputScale * scale')) as int32, a rounding the student
    /// simulates (`QuantizedConvBN`). A student in tune mode quantized the folded weight itself:
    /// its levels are taken as they are (`integerFoldedConvolution`).
    /// - imageShape: [C, H, W] of the inputs, which fixes the classifier's pooled positions.
    public init(exporting student: QuantizedResNet, imageShape: [Int]) throws {
        try student.requireCalibrated(model: "the student")
        precondition(imageShape.count == 3, "image shape \(imageShape) is not [C, H, W]")
        architecture = student.architecture
        self.imageShape = imageShape
        input = student.imageQuantization
        stem = try integerConvolution("conv", student.stem, input: input)
        stemActivation = student.act.quantizationParameters
        var blocks: [IntegerBasicBlock] = []
        var previous = stemActivation
        for (i, b) in student.blocks.enumerated() {
            let name = "layers.\(i)"
            let act1 = b.act1.quantizationParameters
            let block = IntegerBasicBlock(
                c1: try integerConvolution("\(name).c1", b.block1, input: previous),
                act1: act1,
                c2: try integerConvolution("\(name).c2", b.block2, input: act1),
                shortcut: try b.shortcut.map { try integerConvolution("\(name).sc.0", $0, input: previous) },
                act2: b.act2.quantizationParameters)
            blocks.append(block)
            previous = block.act2
        }
        self.blocks = blocks
        fc = try integerClassifier(student.fc, input: previous, pooledPositions: lastStagePositions(imageShape))
    }
}

/// Positions of the last stage: two stride-2 stages (3x3, padding 1) take H to ceil(H / 4).
func lastStagePositions(_ imageShape: [Int]) -> Int {
    ((imageShape[1] + 3) / 4) * ((imageShape[2] + 3) / 4)
}

/// The integer form of a student's convolution and the batch norm after it, in the convention
/// the block runs in: eval (quantize w, fold after) or tune (quantize the folded weight).
func integerConvolution(_ name: String, _ block: QuantizedConvBN, input: QuantizationParameters) throws -> IntegerConv2d {
    if block.mode == .tune { return try integerFoldedConvolution(name, block, input: input) }
    let weight = block.conv.conv.weight.value
    let (o, patch) = (weight.shape[0], weight.count / weight.shape[0])
    let quantizer = block.conv.weightFakeQuant
    quantizer.observer.observe(weight)
    let params = quantizer.quantizationParameters
    var levels = params.quantize(weight)
    let folding = Folding(block.conv.conv, block.bn)
    var scales: [Float] = [], zeroPoints: [Int32] = []
    for c in 0..<o {
        let s = folding.factor[c]
        var zp = params.zeroPoint[params.axis == nil ? 0 : c]
        let channel = (c * patch)..<((c + 1) * patch)
        if s < 0 {
            let mirror = quantizer.observer.scheme.isSymmetric ? 2 * zp : params.quantMax
            for i in channel { levels[i] = UInt8(mirror - Int32(levels[i])) }
            zp = mirror - zp
        } else if s == 0 {
            // The folded channel is zero: every level at the zero point, the output is its bias.
            for i in channel { levels[i] = UInt8(zp) }
        }
        scales.append(folding.weightScale(params, channel: c))
        zeroPoints.append(zp)
    }
    let bias = try integerBias(folding.bias, units: scales.map { $0 * input.scale[0] }, layer: name)
    let conv = IntegerConv2d(outChannels: o, inChannels: weight.shape[1], kernel: weight.shape[2],
                             stride: block.conv.conv.stride, padding: block.conv.conv.padding, weightBits: params.bits,
                             weightLevels: levels, weightScale: scales, weightZeroPoint: zeroPoints, bias: bias, input: input)
    try checkAccumulator(conv.accumulatorBound, layer: name)
    return conv
}

/// The integer form of a tune-mode block: the folded weight w' = w * s quantized by the block's
/// weight quantizer exactly as its forward does (same fold, same observer), so the levels and
/// scales are the student's own (`foldedWeightScales`); the bias is round(b' / (inputScale * scale[o])).
func integerFoldedConvolution(_ name: String, _ block: QuantizedConvBN, input: QuantizationParameters) throws -> IntegerConv2d {
    let conv = block.conv.conv
    let fold = block.bn.fold(convBias: conv.bias?.value.scalars)
    let weight = conv.weight.value.scaledPerOutputChannel(fold.scale)
    let o = weight.shape[0]
    let quantizer = block.conv.weightFakeQuant
    quantizer.observer.observe(weight)
    let params = quantizer.quantizationParameters
    let perChannel = params.axis != nil
    let scales = block.foldedWeightScales(params)
    let zeroPoints = (0..<o).map { params.zeroPoint[perChannel ? $0 : 0] }
    let bias = try integerBias(fold.bias, units: scales.map { $0 * input.scale[0] }, layer: name)
    let integer = IntegerConv2d(outChannels: o, inChannels: weight.shape[1], kernel: weight.shape[2],
                                stride: conv.stride, padding: conv.padding, weightBits: params.bits,
                                weightLevels: params.quantize(weight), weightScale: scales, weightZeroPoint: zeroPoints,
                                bias: bias, input: input)
    try checkAccumulator(integer.accumulatorBound, layer: name)
    return integer
}

/// The integer form of the student's classifier, on pooled sums of `input` levels.
func integerClassifier(_ q: QuantizedLinear, input: QuantizationParameters, pooledPositions: Int) throws -> IntegerLinear {
    let weight = q.linear.weight.value
    let (o, i) = (weight.shape[0], weight.shape[1])
    q.weightFakeQuant.observer.observe(weight)
    let params = q.weightFakeQuant.quantizationParameters
    let perChannel = params.axis != nil
    let scales = (0..<o).map { params.scale[perChannel ? $0 : 0] }
    let zeroPoints = (0..<o).map { params.zeroPoint[perChannel ? $0 : 0] }
    let b = q.linear.bias?.value.scalars ?? [Float](repeating: 0, count: o)
    let unit = input.scale[0] / Float(pooledPositions)
    let bias = try integerBias(b, units: scales.map { $0 * unit }, layer: "fc")
    let fc = IntegerLinear(outFeatures: o, inFeatures: i, weightBits: params.bits, weightLevels: params.quantize(weight),
                           weightScale: scales, weightZeroPoint: zeroPoints, bias: bias, input: input,
                           pooledPositions: pooledPositions)
    try checkAccumulator(fc.accumulatorBound, layer: "fc")
    return fc
}

/// round(b / unit) per channel as int32.
func integerBias(_ bias: [Float], units: [Float], layer: String) throws -> [Int32] {
    try biasLevels(bias, units: units).enumerated().map { c, level in
        guard let value = Int32(exactly: level) else {
            throw QuantizationError.notExportable(layer: layer, reason: "the bias of channel \(c) is \(bias[c]), \(level) units of \(units[c]), beyond int32")
        }
        return value
    }
}

func checkAccumulator(_ bound: Int, layer: String) throws {
    guard bound < Int(Int32.max) else {
        throw QuantizationError.notExportable(layer: layer, reason: "its accumulator can reach \(bound), beyond int32")
    }
}
