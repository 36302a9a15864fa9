import Autodiff
import Checkpoint
import Data
import Foundation
import Methods
import NN
import Quantization
import Safetensors
import Testing
import TensorCore
import TestSupport

// The exported integer model against the fake-quantized student it came from. The student adds
// the rounding of the integer bias and rounds its image to the integer model's input grid, so both
// compute the same quantized network; what remains is float32 rounding in the student's
// convolutions, which now and then moves a value across a level boundary (more often at 8 bits,
// whose levels are finer, but each such move is smaller).
//
// Stated tolerance, relative to the largest |logit| of a 64-image batch: median |difference| at
// most 1e-5, every logit within 2e-2.
@Suite struct IntegerModelTests {
    static let configurations: [QuantizationConfig] = [
        config(8, 8), config(4, 4), config(3, 3), config(2, 2),
        config(4, 4) { $0.firstAndLastAt8Bits = true; $0.quantizeInput = true },
        config(4, 4) { $0.weightScheme = .perTensorAffine },
        config(4, 4) { $0.weightScheme = .perChannelSymmetric(axis: 0); $0.activationScheme = .perTensorSymmetric },
        config(5, 4) { $0.weightScheme = .perTensorSymmetric },
        // MSE ranges: clipped weights and activations (values beyond the range saturate).
        config(4, 4) { $0.weightRange = .mse; $0.activationRange = .mse },
        config(3, 3) { $0.weightRange = .mse; $0.activationRange = .mse },
        config(4, 4) { $0.weightRange = .mse; $0.activationRange = .mse; $0.firstAndLastAt8Bits = true; $0.quantizeInput = true },
        config(3, 3) { $0.weightRange = .mse; $0.weightScheme = .perChannelSymmetric(axis: 0); $0.activationRange = .mse },
        config(4, 4) { $0.weightRange = .mse; $0.weightScheme = .perTensorAffine },
    ]

    @Test(arguments: configurations)
    func logitsMatchTheFakeQuantizedStudent(_ c: QuantizationConfig) throws {
        let student = try calibratedStudent(realisticTeacher(), c)
        try expectIntegerLogitsMatch(student, c.name)
    }

    @Test(arguments: [config(8, 8), config(4, 4), config(4, 4) { $0.weightRange = .mse; $0.activationRange = .mse }])
    func accuracyMatchesTheStudentOnATestSubset(_ c: QuantizationConfig) throws {
        let student = try calibratedStudent(realisticTeacher(seed: 5), c)
        let integer = try IntegerResNet(exporting: student, imageShape: [1, 28, 28])
        let subset = fashionTest.prefix(1000)
        let fake = evaluate(student, on: subset).accuracy, exact = evaluate(on: subset) { integer.logits($0) }.accuracy
        // At most one image of the 1000 (0.1 points); compared in images, since 0.096 - 0.095 is
        // 0.0010000000000000009 in Double.
        #expect(abs(fake - exact) * Double(subset.count) <= 1 + 1e-9, "\(c.name): student \(fake), integer model \(exact)")
    }

    @Test func integerFileRoundTripsAndIsAboutBitsOver32OfTheFloatFile() throws {
        let dir = try temporaryDirectory()
        let teacher = realisticTeacher()
        let meta = ModelMetadata(role: "teacher", architecture: ResNetConfig(), imageShape: [1, 28, 28], mean: [0.286], std: [0.353])
        let floatURL = dir.appendingPathComponent("teacher.safetensors")
        try ModelFile.save(teacher, metadata: meta, to: floatURL)
        let floatSize = try fileSize(floatURL)
        let images = fashionTest.batch(indices: Array(0..<16)).images
        for bits in [2, 4, 8] {
            let c = config(bits, bits)
            let integer = try IntegerResNet(exporting: try calibratedStudent(teacher, c), imageShape: [1, 28, 28])
            let url = dir.appendingPathComponent("w\(bits).safetensors")
            var integerMeta = meta
            integerMeta.role = IntegerFile.role
            try IntegerFile.save(integer, metadata: integerMeta, config: c, to: url)
            let (loaded, loadedMeta) = try IntegerFile.load(url)
            #expect(loadedMeta == integerMeta)
            #expect(loaded.logits(images).scalars == integer.logits(images).scalars)
            let ratio = Double(try fileSize(url)) / Double(floatSize)
            // Beyond the packed weights: per-channel scales, zero points and biases, and the header.
            #expect(ratio >= Double(bits) / 32 && ratio <= Double(bits) / 32 + 0.025, "W\(bits): size ratio \(ratio)")
        }
    }

    @Test func integerFilesAreNeitherTeachersNorStudentsAndBadTensorsAreNamed() throws {
        let dir = try temporaryDirectory()
        let c = config(4, 4)
        let integer = try IntegerResNet(exporting: try calibratedStudent(realisticTeacher(), c), imageShape: [1, 28, 28])
        let url = dir.appendingPathComponent("int.safetensors")
        let meta = ModelMetadata(role: IntegerFile.role, architecture: ResNetConfig(), imageShape: [1, 28, 28], mean: [0.286], std: [0.353])
        try IntegerFile.save(integer, metadata: meta, config: c, to: url)
        #expect(errorText { _ = try ModelFile.load(url) } == "\(url.path): this is an integer file, expected a teacher file")
        #expect(errorText { _ = try StudentFile.load(url) } == "\(url.path): this is an integer file, expected a student file")

        var file = try SafetensorsFile.read(contentsOf: url)
        file.setIntegers("layers.4.c2.weight_zero_point", [Int64](repeating: 16, count: 32), shape: [32], dtype: .i32)
        let bad = dir.appendingPathComponent("bad.safetensors")
        try file.write(to: bad)
        #expect(errorText { _ = try IntegerFile.load(bad) } == "\(bad.path): tensor 'layers.4.c2.weight_zero_point' holds 16, outside 0...15")
    }

    @Test func exportNeedsCalibratedRanges() throws {
        let student = try quantize(realisticTeacher(), config: config(4, 4), inputRange: fashionRange)
        let message = errorText { _ = try IntegerResNet(exporting: student, imageShape: [1, 28, 28]) }
        #expect(message.hasPrefix("the student: activation quantizer(s) act, layers.0.act1, layers.0.act2, layers.1.act1, ... have no range yet"))
    }

    @Test(arguments: 2...8)
    func bitPackingRoundTrips(_ bits: Int) {
        var stream = RandomStream(seed: 3, purpose: 0, step: bits, index: 0)
        let levels = (0..<1001).map { _ in UInt8(stream.int(below: 1 << bits)) }
        let packed = BitPacking.pack(levels, bits: bits)
        #expect(packed.count == (1001 * bits + 7) / 8)
        #expect(BitPacking.unpack(packed, bits: bits, count: levels.count) == levels)
    }
}

func fileSize(_ url: URL) throws -> Int {
    try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
}
