import Autodiff
import Data
import Foundation
import NN
import Quantization
import TensorCore
import Testing

/// The Fashion-MNIST test set (installed by scripts/setup.sh), loaded once.
let fashionTest: Dataset = try! FashionMNIST.load(split: .test)
let fashionRange = normalisedPixelRange(mean: [FashionMNIST.mean], std: [FashionMNIST.std])

/// A random ResNet-20 made to look trained where quantization cares: batch-norm running
/// statistics of real images (so activation ranges are realistic), and gammas of both signs,
/// one exactly 0, so that folding has to mirror levels and handle an empty channel.
func realisticTeacher(seed: UInt64 = 0) -> ResNet {
    let model = ResNet(ResNetConfig(), seed: seed)
    for bn in model.batchNorms { bn.momentum = 1 }
    model.setMode(.train)
    _ = withoutGradients { model(Variable(fashionTest.batch(indices: Array(0..<200)).images)) }
    model.setMode(.eval)
    for (i, bn) in model.batchNorms.enumerated() {
        bn.momentum = 0.1
        var gamma = Tensor.randomUniform([bn.channels], bound: 1, seed: seed &+ UInt64(i), purpose: 7).map { $0 + 0.6 }
        if i == 2 { gamma[flat: 0] = 0 }
        bn.weight!.assign(gamma)
        bn.bias!.assign(Tensor.randomNormal([bn.channels], std: 0.2, seed: seed &+ UInt64(i), purpose: 8))
    }
    return model
}

/// A calibrated student of `teacher` (Gaussian-noise PTQ, as `quantize --method ptq`).
func calibratedStudent(_ teacher: ResNet, _ config: QuantizationConfig, batches: Int = 8) throws -> QuantizedResNet {
    let student = try quantize(teacher, config: config, inputRange: fashionRange)
    student.calibrate(batches: batches) { gaussianNoiseImages(count: 32, shape: [1, 28, 28], seed: 0, step: $0) }
    return student
}

func config(_ w: Int, _ a: Int, _ change: (inout QuantizationConfig) -> Void = { _ in }) -> QuantizationConfig {
    var c = QuantizationConfig(weightBits: w, activationBits: a)
    change(&c)
    return c
}

func logits(_ model: any Layer, _ images: Tensor) -> Tensor {
    withoutGradients { model(Variable(images)) }.value
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("acq-dist-quant-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The error `body` throws, as text ("" when it throws none).
func errorText(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return ""
}

/// The integer model exported from `student` against the student on 64 test images: relative to
/// the largest |logit|, the median difference at most 1e-5 and every logit within 2e-2.
func expectIntegerLogitsMatch(_ student: QuantizedResNet, _ name: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
    let integer = try IntegerResNet(exporting: student, imageShape: [1, 28, 28])
    let images = fashionTest.batch(indices: Array(1000..<1064)).images
    let expected = logits(student, images), actual = integer.logits(images)
    let scale = expected.maxAbs()
    let errors = zip(actual.scalars, expected.scalars).map { abs($0 - $1) / scale }.sorted()
    #expect(errors[errors.count / 2] <= 1e-5, "\(name): median logit difference \(errors[errors.count / 2]) of the largest |logit|",
            sourceLocation: sourceLocation)
    #expect(errors.last! <= 2e-2, "\(name): largest logit difference \(errors.last!) of the largest |logit|",
            sourceLocation: sourceLocation)
}
