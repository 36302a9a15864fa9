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

// A quantized student in tune mode: each conv+BN block folds the BN into the conv from the real
// parameters at every forward, fake-quantizes the folded weight per output channel and runs one
// convolution; its integer export takes those levels as they are.
@Suite struct TuneStudentTests {
    /// A calibrated student of `teacher` in tune mode.
    func tuneStudent(_ teacher: ResNet, _ c: QuantizationConfig, batches: Int = 8) throws -> QuantizedResNet {
        let student = try quantize(teacher, config: c, inputRange: fashionRange)
        try student.setConvBNMode(.tune)
        student.calibrate(batches: batches) { gaussianNoiseImages(count: 32, shape: [1, 28, 28], seed: 0, step: $0) }
        #expect(student.convBNMode == .tune, "calibration keeps tune mode")
        return student
    }

    /// A block's tune forward and gradients equal fold -> fake-quantize (per output channel) ->
    /// conv, composed by hand, plus the integer bias rounding; the gradients reach w, gamma and
    /// beta through the fold (dL/dw = dL/dw' * s with the straight-through estimator).
    @Test func tuneBlockEqualsHandComposedFoldQuantizeConv() throws {
        let student = try tuneStudent(realisticTeacher(), config(4, 4), batches: 2)
        let block = student.blocks[3].block1   // stride 2, 16 -> 32 channels, input layers.2.act2
        let inputScale = student.blocks[2].act2.quantizationParameters.scale[0]
        let x = Tensor.randomUniform([2, 16, 28, 28], bound: 1, seed: 11, purpose: 1).map { abs($0) }
        let gy = Tensor.randomNormal([2, 32, 14, 14], seed: 12)

        let (conv, bn) = (block.conv.conv, block.bn)
        for p in [conv.weight, bn.weight!, bn.bias!] { p.zeroGradient() }
        let y = block.forward(Variable(x))
        y.backward(seed: gy)

        let fold = bn.fold(convBias: conv.bias?.value.scalars)
        let w = conv.weight.value, o = w.shape[0], k = w.count / o
        let folded = w.scaledPerOutputChannel(fold.scale).scalars
        let lo = (0..<o).map { c in folded[(c * k)..<((c + 1) * k)].min()! }
        let hi = (0..<o).map { c in folded[(c * k)..<((c + 1) * k)].max()! }
        let params = QuantizationParameters(bits: 4, minimum: lo, maximum: hi, symmetric: false, axis: 0)
        let wq = Variable(params.fakeQuantize(Tensor(shape: w.shape, scalars: folded)), requiresGrad: true)
        let bq = Variable(Tensor(shape: [o], scalars: fold.bias), requiresGrad: true)
        let expectedConv = conv2d(Variable(x), weight: wq, bias: bq, stride: conv.stride, padding: conv.padding)
        let correction = (0..<o).map { c -> Float in
            let unit = Double(inputScale) * Double(params.scale[c])
            return Float((Double(fold.bias[c]) / unit).rounded(.toNearestOrEven) * unit - Double(fold.bias[c]))
        }
        var expected = expectedConv.value
        expected.addChannelBias(Tensor(shape: [o], scalars: correction))
        #expect(correction.contains { $0 != 0 }, "the bias rounding must be exercised")
        expectClose(y.value, expected, rtol: 1e-6, atol: 1e-6, "tune block output")

        expectedConv.backward(seed: gy)
        let gw = wq.grad!, gb = bq.grad!
        expectClose(conv.weight.grad!, gw.scaledPerOutputChannel(fold.scale), rtol: 1e-5, atol: 1e-6, "dL/dw = dL/dw' * s")
        expectClose(bn.bias!.grad!, gb, rtol: 1e-5, atol: 1e-6, "dL/dbeta = dL/db'")
        let b = conv.bias?.value.scalars ?? [Float](repeating: 0, count: o), mean = bn.runningMean.value.scalars
        let dGamma = (0..<o).map { c -> Float in
            var s: Float = 0
            for i in 0..<k { s += gw[flat: c * k + i] * w[flat: c * k + i] }
            return fold.inverseStd[c] * (s + gb[flat: c] * (b[c] - mean[c]))
        }
        expectClose(bn.weight!.grad!, Tensor(shape: [o], scalars: dGamma), rtol: 1e-4, atol: 1e-5, "dL/dgamma")
    }

    /// Per output channel, affine or symmetric quantization commutes with a positive per-channel
    /// scale (and mirrors under a negative one), so fake-quantizing w' = w * s gives s times the
    /// fake-quantized w: with the default per-channel scheme the tune and eval students are the
    /// same quantized network up to float rounding. With a per-tensor scheme they are not: tune
    /// quantizes the folded weights on one grid, eval the conv weights. (Both students share the
    /// activation ranges here: calibrating each on its own lets float-rounding differences
    /// of early layers change later ranges.)
    @Test func tuneAndEvalStudentsDifferOnlyForPerTensorWeights() throws {
        let teacher = realisticTeacher()
        let images = fashionTest.batch(indices: Array(0..<32)).images
        for (c, same) in [(config(4, 4), true), (config(4, 4) { $0.weightScheme = .perTensorAffine }, false)] {
            let eval = try calibratedStudent(teacher, c, batches: 2)
            let tune = try quantize(teacher, config: c, inputRange: fashionRange)
            for ((_, mine), (_, theirs)) in zip(tune.namedState(), eval.namedState()) { mine.assign(theirs.value) }
            try tune.setConvBNMode(.tune)
            let (a, b) = (logits(tune, images), logits(eval, images))
            let errors = zip(a.scalars, b.scalars).map { abs($0 - $1) / b.maxAbs() }.sorted()
            if same {
                #expect(errors[errors.count / 2] <= 1e-5, "\(c.name) per channel: median difference \(errors[errors.count / 2])")
            } else {
                #expect(errors[errors.count / 2] >= 1e-3, "\(c.name) per tensor: median difference \(errors[errors.count / 2])")
            }
        }
    }

    /// Same tolerance as IntegerModelTests: relative to the largest |logit| of 64 images, median
    /// difference at most 1e-5, every logit within 2e-2.
    @Test(arguments: [config(8, 8), config(4, 4), config(3, 3), config(4, 4) { $0.weightScheme = .perTensorAffine },
                      config(4, 4) { $0.firstAndLastAt8Bits = true; $0.quantizeInput = true },
                      config(4, 4) { $0.weightScheme = .perChannelSymmetric(axis: 0); $0.activationScheme = .perTensorSymmetric },
                      config(4, 4) { $0.weightRange = .mse }, config(4, 4) { $0.activationRange = .mse },
                      config(3, 3) { $0.weightRange = .mse; $0.activationRange = .mse }])
    func integerLogitsMatchTheTuneStudent(_ c: QuantizationConfig) throws {
        let student = try tuneStudent(realisticTeacher(), c)
        try expectIntegerLogitsMatch(student, c.name)
    }

    @Test(arguments: [config(8, 8), config(4, 4), config(4, 4) { $0.weightRange = .mse; $0.activationRange = .mse }])
    func integerAccuracyMatchesTheTuneStudentOn1000Images(_ c: QuantizationConfig) throws {
        let student = try tuneStudent(realisticTeacher(seed: 5), c)
        let integer = try IntegerResNet(exporting: student, imageShape: [1, 28, 28])
        let subset = fashionTest.prefix(1000)
        let fake = evaluate(student, on: subset).accuracy, exact = evaluate(on: subset) { integer.logits($0) }.accuracy
        #expect(student.convBNMode == .eval, "evaluate sets eval mode")
        // `evaluate` put the student in eval mode: measure it in tune mode, as trained and exported.
        try student.setConvBNMode(.tune)
        let tuned = evaluate(on: subset) { images in withoutGradients { student(Variable(images)) }.value }.accuracy
        #expect(abs(tuned - exact) * Double(subset.count) <= 1 + 1e-9, "\(c.name): tune student \(tuned), integer model \(exact) (eval-mode view \(fake))")
    }

    /// With the shipped teacher, a W8A8 tune student calibrated on Gaussian noise (the PTQ
    /// baseline's calibration) stays within 0.3 points of the teacher on the test set, and so
    /// does its integer model.
    @Test func w8a8TuneStudentOfTheShippedTeacherKeepsItsAccuracy() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let (teacher, _) = try ModelFile.load(root.appendingPathComponent("models/resnet20-fashion-mnist.safetensors"))
        let teacherAccuracy = evaluate(teacher, on: fashionTest).accuracy
        let student = try quantize(teacher, config: config(8, 8), inputRange: fashionRange)
        try student.setConvBNMode(.tune)
        calibrateOnGaussianNoise(student, imageShape: [1, 28, 28], NoiseCalibration())
        let integer = try IntegerResNet(exporting: student, imageShape: [1, 28, 28])
        let tuned = evaluate(on: fashionTest) { images in withoutGradients { student(Variable(images)) }.value }.accuracy
        let exact = evaluate(on: fashionTest) { integer.logits($0) }.accuracy
        #expect(abs(tuned - teacherAccuracy) <= 0.003, "W8A8 tune student \(tuned), teacher \(teacherAccuracy)")
        #expect(abs(exact - teacherAccuracy) <= 0.003, "its integer model \(exact), teacher \(teacherAccuracy)")
    }

    @Test func studentFileRecordsTheConvention() throws {
        let dir = try temporaryDirectory()
        let student = try tuneStudent(realisticTeacher(), config(4, 4), batches: 2)
        let url = dir.appendingPathComponent("student.safetensors")
        let meta = ModelMetadata(role: "student", architecture: ResNetConfig(), imageShape: [1, 28, 28],
                                 mean: [FashionMNIST.mean], std: [FashionMNIST.std])
        try StudentFile.save(student, metadata: meta, to: url)
        var file = try SafetensorsFile.read(contentsOf: url)
        #expect(file.metadata[StudentFile.convBNModeKey] == "tune")
        let (loaded, _) = try StudentFile.load(url)
        #expect(loaded.convBNMode == .tune)
        let images = fashionTest.batch(indices: Array(0..<8)).images
        #expect(logits(loaded, images).scalars == logits(student, images).scalars)

        // A file from before tune mode (no key) is an eval-mode student; a bad value is named.
        file.metadata[StudentFile.convBNModeKey] = nil
        let old = dir.appendingPathComponent("old.safetensors")
        try file.write(to: old)
        #expect(try StudentFile.load(old).0.convBNMode == .eval)
        file.metadata[StudentFile.convBNModeKey] = "deploy"
        let bad = dir.appendingPathComponent("bad.safetensors")
        try file.write(to: bad)
        let message = errorText { _ = try StudentFile.load(bad) }
        #expect(message.contains(StudentFile.convBNModeKey) && message.contains("'deploy'"), "\(message)")
    }

    @Test func trainAndDeployModesAndBatchNormsWithoutStatisticsAreRefused() throws {
        let student = try quantize(realisticTeacher(), config: config(4, 4), inputRange: fashionRange)
        for mode in [Mode.train, .deploy] {
            #expect(errorText { try student.setConvBNMode(mode) }.contains("eval or tune mode, not \(mode.rawValue)"))
        }
        #expect(student.convBNMode == .eval)
        student.blocks[1].block2.bn.tracksRunningStatistics = false
        let message = errorText { try student.setConvBNMode(.tune) }
        #expect(message == "tune mode does not apply to block 'layers.1.c2': its batch norm keeps no running statistics")
        #expect(student.convBNMode == .eval)
    }
}


