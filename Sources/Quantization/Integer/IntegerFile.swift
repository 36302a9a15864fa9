import Checkpoint
import Foundation
import NN
import Safetensors
import TensorCore

/// An integer model in one safetensors file, metadata role "integer". Per convolution (BN folded
/// in, so no BN tensors) and for the classifier, under the teacher's layer names:
/// `<layer>.weight` U8, the levels packed at the layer's bit width (`BitPacking`);
/// `<layer>.weight_scale` F32 [out]; `<layer>.weight_zero_point` I32 [out]; `<layer>.bias` I32 [out].
/// Per activation quantizer (`input`, `act`, `layers.<i>.act1`, `layers.<i>.act2`):
/// `<name>.scale` F32 [1] and `<name>.zero_point` I32 [1]. The metadata key `acq_dist_integer`
/// holds every layer's bit width.
public enum IntegerFile {
    public static let role = "integer"
    public static let layoutKey = "acq_dist_integer"

    struct Layout: Codable {
        var weightBits: [String: Int]
        var activationBits: [String: Int]
    }

    /// - metadata: the student's, with role "integer"; config: the student's, for provenance.
    public static func save(_ model: IntegerResNet, metadata: ModelMetadata, config: QuantizationConfig, to url: URL) throws {
        precondition(metadata.role == role, "an integer model file's role is '\(role)', got '\(metadata.role)'")
        var file = SafetensorsFile(source: url.path)
        var layout = Layout(weightBits: [:], activationBits: [:])
        func put(_ name: String, _ p: QuantizationParameters) {
            file.set("\(name).scale", Tensor(shape: [1], scalars: p.scale), dtype: .f32)
            file.setIntegers("\(name).zero_point", p.zeroPoint.map(Int64.init), shape: [1], dtype: .i32)
            layout.activationBits[name] = p.bits
        }
        func put(_ name: String, bits: Int, levels: [UInt8], scale: [Float], zeroPoint: [Int32], bias: [Int32]) {
            let packed = BitPacking.pack(levels, bits: bits)
            file.setIntegers("\(name).weight", packed.map(Int64.init), shape: [packed.count], dtype: .u8)
            file.set("\(name).weight_scale", Tensor(shape: [scale.count], scalars: scale), dtype: .f32)
            file.setIntegers("\(name).weight_zero_point", zeroPoint.map(Int64.init), shape: [zeroPoint.count], dtype: .i32)
            file.setIntegers("\(name).bias", bias.map(Int64.init), shape: [bias.count], dtype: .i32)
            layout.weightBits[name] = bits
        }
        func put(_ name: String, _ c: IntegerConv2d) {
            put(name, bits: c.weightBits, levels: c.weightLevels, scale: c.weightScale, zeroPoint: c.weightZeroPoint, bias: c.bias)
        }
        put("input", model.input)
        put("conv", model.stem)
        put("act", model.stemActivation)
        for (i, b) in model.blocks.enumerated() {
            put("layers.\(i).c1", b.c1)
            put("layers.\(i).act1", b.act1)
            put("layers.\(i).c2", b.c2)
            if let sc = b.shortcut { put("layers.\(i).sc.0", sc) }
            put("layers.\(i).act2", b.act2)
        }
        put("fc", bits: model.fc.weightBits, levels: model.fc.weightLevels, scale: model.fc.weightScale,
            zeroPoint: model.fc.weightZeroPoint, bias: model.fc.bias)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        file.metadata = [ModelMetadata.key: String(decoding: try encoder.encode(metadata), as: UTF8.self),
                         StudentFile.configurationKey: String(decoding: try encoder.encode(config), as: UTF8.self),
                         layoutKey: String(decoding: try encoder.encode(layout), as: UTF8.self)]
        try file.write(to: url)
    }

    /// Loads a file written by `save`; any other role, a missing or inconsistent tensor, a level
    /// or zero point outside its bit width is an error naming the file and the tensor.
    public static func load(_ url: URL) throws -> (IntegerResNet, ModelMetadata) {
        let file = try SafetensorsFile.read(contentsOf: url)
        let metadata = try ModelFile.metadata(of: file, expectedRole: role)
        guard let json = file.metadata[layoutKey],
              let layout = try? JSONDecoder().decode(Layout.self, from: Data(json.utf8)) else {
            throw QuantizationError.badMetadata(file: file.source, key: layoutKey, reason: "is absent or not a layer layout")
        }
        let reader = Reader(file: file, layout: layout)
        // The float architecture gives every layer's shape, stride and padding.
        let shapes = ResNet(metadata.architecture)
        let input = try reader.activation("input")
        let stem = try reader.conv("conv", shapes.conv, input: input)
        let stemActivation = try reader.activation("act")
        var blocks: [IntegerBasicBlock] = []
        var previous = stemActivation
        for (i, layer) in shapes.layers.layers.enumerated() {
            let block = layer as! BasicBlock
            let act1 = try reader.activation("layers.\(i).act1")
            let shortcut = try block.shortcut.map { try reader.conv("layers.\(i).sc.0", $0.layers[0] as! Conv2d, input: previous) }
            let b = IntegerBasicBlock(c1: try reader.conv("layers.\(i).c1", block.c1, input: previous), act1: act1,
                                      c2: try reader.conv("layers.\(i).c2", block.c2, input: act1), shortcut: shortcut,
                                      act2: try reader.activation("layers.\(i).act2"))
            blocks.append(b)
            previous = b.act2
        }
        let image = metadata.imageShape
        guard image.count == 3 else {
            throw QuantizationError.badMetadata(file: file.source, key: "imageShape", reason: "is \(image), not [C, H, W]")
        }
        let fc = try reader.linear("fc", shapes.fc, input: previous, pooledPositions: lastStagePositions(image))
        let model = IntegerResNet(architecture: metadata.architecture, imageShape: image, input: input, stem: stem,
                                  stemActivation: stemActivation, blocks: blocks, fc: fc)
        return (model, metadata)
    }

    /// Reads and checks the tensors of one layer or quantizer.
    struct Reader {
        let file: SafetensorsFile
        let layout: Layout

        func fail(_ tensor: String, _ reason: String) -> QuantizationError {
            .badTensor(file: file.source, tensor: tensor, reason: reason)
        }

        func integers(_ name: String, count: Int, dtype: DType, range: ClosedRange<Int64>) throws -> [Int32] {
            let values = try file.integers(name, shape: [count])
            guard file.dtypes[name] == dtype else { throw fail(name, "is \(file.dtypes[name]?.rawValue ?? "?"), expected \(dtype.rawValue)") }
            if let bad = values.first(where: { !range.contains($0) }) {
                throw fail(name, "holds \(bad), outside \(range.lowerBound)...\(range.upperBound)")
            }
            return values.map { Int32($0) }
        }

        func scales(_ name: String, count: Int) throws -> [Float] {
            let values = try file.tensor(name, shape: [count]).scalars
            if let bad = values.first(where: { !($0.isFinite && $0 > 0) }) { throw fail(name, "holds scale \(bad); scales are finite and positive") }
            return values
        }

        func bits(_ name: String, in table: [String: Int], allowed: ClosedRange<Int> = QuantizationConfig.bitRange) throws -> Int {
            guard let b = table[name] else {
                throw QuantizationError.badMetadata(file: file.source, key: IntegerFile.layoutKey, reason: "has no bit width for '\(name)'")
            }
            guard allowed.contains(b) else {
                throw QuantizationError.badMetadata(file: file.source, key: IntegerFile.layoutKey,
                                                    reason: "gives '\(name)' \(b) bits, outside \(allowed.lowerBound) to \(allowed.upperBound)")
            }
            return b
        }

        /// The image quantizer may have up to 15 bits (see `QuantizedResNet.imageQuantization`).
        func activation(_ name: String) throws -> QuantizationParameters {
            let b = try bits(name, in: layout.activationBits, allowed: name == "input" ? 2...15 : QuantizationConfig.bitRange)
            let zp = try integers("\(name).zero_point", count: 1, dtype: .i32, range: 0...Int64(1 << b - 1))
            return QuantizationParameters(bits: b, scale: try scales("\(name).scale", count: 1), zeroPoint: zp, axis: nil)
        }

        /// Weight levels, per-channel scales and zero points, and int32 bias of a layer with
        /// `outputs` rows of `count / outputs` weights.
        func weights(_ name: String, outputs: Int, count: Int)
            throws -> (bits: Int, levels: [UInt8], scale: [Float], zeroPoint: [Int32], bias: [Int32]) {
            let b = try bits(name, in: layout.weightBits)
            let packed = try integers("\(name).weight", count: BitPacking.byteCount(count, bits: b), dtype: .u8, range: 0...255)
            let levels = BitPacking.unpack(packed.map { UInt8($0) }, bits: b, count: count)
            let zp = try integers("\(name).weight_zero_point", count: outputs, dtype: .i32, range: 0...Int64(1 << b - 1))
            let bias = try integers("\(name).bias", count: outputs, dtype: .i32, range: Int64(Int32.min)...Int64(Int32.max))
            return (b, levels, try scales("\(name).weight_scale", count: outputs), zp, bias)
        }

        func conv(_ name: String, _ shape: Conv2d, input: QuantizationParameters) throws -> IntegerConv2d {
            let w = shape.weight.shape
            let t = try weights(name, outputs: w[0], count: shape.weight.value.count)
            let c = IntegerConv2d(outChannels: w[0], inChannels: w[1], kernel: w[2], stride: shape.stride, padding: shape.padding,
                                  weightBits: t.bits, weightLevels: t.levels, weightScale: t.scale, weightZeroPoint: t.zeroPoint,
                                  bias: t.bias, input: input)
            guard c.accumulatorBound < Int(Int32.max) else { throw fail("\(name).bias", "lets the accumulator exceed int32") }
            return c
        }

        func linear(_ name: String, _ shape: Linear, input: QuantizationParameters, pooledPositions: Int) throws -> IntegerLinear {
            let w = shape.weight.shape
            let t = try weights(name, outputs: w[0], count: w[0] * w[1])
            let l = IntegerLinear(outFeatures: w[0], inFeatures: w[1], weightBits: t.bits, weightLevels: t.levels,
                                  weightScale: t.scale, weightZeroPoint: t.zeroPoint, bias: t.bias, input: input,
                                  pooledPositions: pooledPositions)
            guard l.accumulatorBound < Int(Int32.max) else { throw fail("\(name).bias", "lets the accumulator exceed int32") }
            return l
        }
    }
}
