import Autodiff
import Checkpoint
import Data
import Foundation
import NN
import Quantization
import Safetensors
import Testing
import TensorCore
import TestSupport

@Suite struct StudentTests {
    @Test func conversionCopiesTheTeacherAndAddsOnlyActivationRanges() throws {
        let teacher = realisticTeacher()
        let student = try quantize(teacher, config: config(4, 4), inputRange: fashionRange)
        let teacherState = Dictionary(uniqueKeysWithValues: teacher.namedState().map { ($0.0, $0.1) })
        var added: [String] = []
        for (name, p) in student.namedState() {
            guard let t = teacherState[name] else { added.append(name); continue }
            #expect(p.value.scalars == t.value.scalars, "\(name)")
            #expect(!p.value.sharesStorage(with: t.value), "\(name) is shared with the teacher")
        }
        #expect(student.namedState().count == teacherState.count + added.count)
        let expected = ["input", "act"] + (0..<9).flatMap { ["layers.\($0).act1", "layers.\($0).act2"] }
        #expect(Set(added) == Set(expected.flatMap { ["\($0).min_val", "\($0).max_val"] }))
        // Trainable: conv and fc weights, BN gamma/beta; buffers: running statistics, ranges.
        #expect(Set(student.namedParameters().map(\.0)) == Set(teacher.namedParameters().map(\.0)))
    }

    @Test func batchNormsStayOnTheTeachersRunningStatistics() throws {
        let teacher = realisticTeacher()
        let student = try calibratedStudent(teacher, config(4, 4))
        let before = student.batchNorms.map { $0.runningMean.value.scalars + $0.runningVar.value.scalars }
        let images = fashionTest.batch(indices: Array(0..<16)).images
        let loss = crossEntropy(student(Variable(images)), labels: Array(repeating: 3, count: 16))
        loss.backward()
        #expect(student.batchNorms.map { $0.runningMean.value.scalars + $0.runningVar.value.scalars } == before)
        #expect(student.batchNorms.allSatisfy { $0.mode == .eval })
        #expect(student.stem.bn.weight?.grad != nil && student.stem.bn.bias?.grad != nil, "gamma/beta train")
        #expect(student.blocks[4].block2.conv.conv.weight.grad != nil)
    }

    @Test func bitWidthsOfEveryLayerFollowTheConfiguration() throws {
        let teacher = realisticTeacher()
        let plain = try quantize(teacher, config: config(3, 5), inputRange: fashionRange)
        #expect(plain.quantizedConvBNBlocks.allSatisfy { $0.1.conv.weightFakeQuant.bits == 3 } && plain.fc.weightFakeQuant.bits == 3)
        #expect(plain.activationQuantizers.allSatisfy { $0.1.bits == 5 })
        let ends = try quantize(teacher, config: config(3, 5) { $0.firstAndLastAt8Bits = true }, inputRange: fashionRange)
        let convBits = ends.quantizedConvBNBlocks.map { $0.1.conv.weightFakeQuant.bits }
        #expect(convBits.first == 8 && convBits.dropFirst().allSatisfy { $0 == 3 } && ends.fc.weightFakeQuant.bits == 8)
        let actBits = ends.activationQuantizers.map(\.1.bits)
        #expect(actBits.last == 8 && actBits.dropLast().allSatisfy { $0 == 5 }, "the classifier's input keeps 8 bits")
    }

    @Test func calibrationSetsEveryRangeAndFreezesThem() throws {
        let student = try quantize(realisticTeacher(), config: config(4, 4), inputRange: fashionRange)
        #expect(student.uncalibratedQuantizers.count == 19)
        student.calibrate(batches: 3) { gaussianNoiseImages(count: 8, shape: [1, 28, 28], seed: 1, step: $0) }
        #expect(student.uncalibratedQuantizers.isEmpty)
        #expect(student.activationQuantizers.allSatisfy { !$0.1.isObserverEnabled })
        let ranges = student.namedState().filter { $0.0.hasSuffix("_val") }.map(\.1.value.scalars)
        _ = logits(student, gaussianNoiseImages(count: 8, shape: [1, 28, 28], seed: 1, step: 9))
        #expect(student.namedState().filter { $0.0.hasSuffix("_val") }.map(\.1.value.scalars) == ranges)
    }

    @Test func studentFileRoundTripsWithItsRangesAndConfiguration() throws {
        let dir = try temporaryDirectory()
        let c = config(4, 3) { $0.weightScheme = .perTensorSymmetric; $0.firstAndLastAt8Bits = true }
        let student = try calibratedStudent(realisticTeacher(), c)
        let url = dir.appendingPathComponent("student.safetensors")
        let meta = ModelMetadata(role: "student", architecture: ResNetConfig(), imageShape: [1, 28, 28],
                                 mean: [FashionMNIST.mean], std: [FashionMNIST.std])
        try StudentFile.save(student, metadata: meta, to: url)
        let (loaded, loadedMeta) = try StudentFile.load(url)
        #expect(loaded.quantization == c && loadedMeta == meta)
        #expect(loaded.uncalibratedQuantizers.isEmpty)
        let images = fashionTest.batch(indices: Array(0..<8)).images
        #expect(logits(loaded, images).scalars == logits(student, images).scalars)
    }

    @Test func studentAndTeacherFilesRefuseEachOthersRole() throws {
        let dir = try temporaryDirectory()
        let teacher = realisticTeacher()
        let teacherURL = dir.appendingPathComponent("teacher.safetensors"), studentURL = dir.appendingPathComponent("student.safetensors")
        let meta = ModelMetadata(role: "teacher", architecture: ResNetConfig(), imageShape: [1, 28, 28], mean: [0.286], std: [0.353])
        try ModelFile.save(teacher, metadata: meta, to: teacherURL)
        var studentMeta = meta
        studentMeta.role = "student"
        try StudentFile.save(try calibratedStudent(teacher, config(4, 4)), metadata: studentMeta, to: studentURL)

        let asTeacher = errorText { _ = try ModelFile.load(studentURL, expectedRole: "teacher") }
        #expect(asTeacher == "\(studentURL.path): this is a student file, expected a teacher file")
        let asStudent = errorText { _ = try StudentFile.load(teacherURL) }
        #expect(asStudent == "\(teacherURL.path): this is a teacher file, expected a student file")
    }

    @Test(arguments: [(1, 4, "--wbits 1"), (9, 4, "--wbits 9"), (4, 0, "--abits 0"), (4, 16, "--abits 16")])
    func bitWidthsOutsideTwoToEightNameTheOption(_ w: Int, _ a: Int, _ expected: String) {
        let message = errorText { _ = try quantize(realisticTeacher(), config: config(w, a), inputRange: fashionRange) }
        #expect(message == "\(expected): bit widths must be 2 to 8")
    }

    @Test func modelsWithoutQuantizableLayersOrOfAnotherArchitectureAreRefused() {
        let noLayers = errorText { _ = try quantize(Sequential([ReLU(), GlobalAveragePool()]), config: config(4, 4), inputRange: fashionRange) }
        #expect(noLayers == "Sequential has no quantizable layer (no Conv2d or Linear): there is nothing to quantize")
        let other = errorText { _ = try quantize(Sequential([Conv2d(1, 4, kernel: 3)]), config: config(4, 4), inputRange: fashionRange) }
        #expect(other == "Sequential: only the ResNet family can be converted to a quantized student")
    }

    @Test func activationsPerChannelAreRefused() {
        let message = errorText {
            _ = try quantize(realisticTeacher(), config: config(4, 4) { $0.activationScheme = .perChannelAffine(axis: 1) }, inputRange: fashionRange)
        }
        #expect(message == "activation scheme per_channel_affine(axis 1): activations are quantized per tensor")
    }
}
