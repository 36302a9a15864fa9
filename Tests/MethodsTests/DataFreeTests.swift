import Autodiff
import Methods
import NN
import Quantization
import Testing
import TensorCore

@Suite struct DataFreeTests {
    /// Pairs (2k, 2k+1) share label and position and differ in noise; any split of the global
    /// batch draws the same values for the same global samples.
    @Test func syntheticBatchesPairUpAndDoNotDependOnTheSplit() {
        let whole = SyntheticBatch(step: 3, range: 0..<8, latent: 5, classes: 10, positionRange: 0.25, seed: 1)
        for k in 0..<4 {
            #expect(whole.labels[2 * k] == whole.labels[2 * k + 1])
            #expect(whole.positions[flat: 4 * k] == whole.positions[flat: 4 * k + 2])
            #expect(whole.noise.rows((2 * k)..<(2 * k + 1)).scalars != whole.noise.rows((2 * k + 1)..<(2 * k + 2)).scalars)
        }
        #expect(whole.positions.maxAbs() <= 0.25)
        let tail = SyntheticBatch(step: 3, range: 4..<8, latent: 5, classes: 10, positionRange: 0.25, seed: 1)
        #expect(tail.labels == Array(whole.labels[4..<8]))
        #expect(tail.noise.scalars == whole.noise.rows(4..<8).scalars)
        #expect(tail.positions.scalars == whole.positions.rows(4..<8).scalars)
    }

    func smallRun(_ method: DataFreeMethod, batch: Int = 8, studentCEWeight: Float = 1) throws -> DataFreeTrainer {
        var config = DataFreeConfig()
        config.method = method
        config.studentCEWeight = studentCEWeight
        config.batchSize = batch
        config.steps = 4
        config.calibrationSteps = 1
        let teacher = ResNet(ResNetConfig(), seed: 2)
        let student = try quantize(teacher, config: QuantizationConfig(weightBits: 4, activationBits: 4),
                                   inputRange: normalisedPixelRange(mean: [0.286], std: [0.353]))
        return try DataFreeTrainer(config: config, teacher: teacher, student: student)
    }

    @Test(arguments: DataFreeMethod.allCases)
    func stepsTrainGeneratorAndStudentWithTheMethodsTerms(_ method: DataFreeMethod) throws {
        let trainer = try smallRun(method)
        func generatorValues() -> [Float] { trainer.generator.namedParameters().flatMap { $0.1.value.scalars } }
        let before = generatorValues()
        let (images, labels, terms) = try trainer.generatorStep(0, learningRate: 1e-3)
        let expected: Set<String> = method == .acq ? ["ce", "bns", "acm", "pair", "cons", "generator"] : ["ce", "bns", "generator"]
        #expect(Set(terms.keys) == expected)
        #expect(terms.values.allSatisfy { $0.isFinite })
        #expect(generatorValues() != before, "the generator step must move the generator")
        trainer.calibrateStudent(from: 1)
        let loss = try trainer.studentStep(images: images, labels: labels, learningRate: 1e-3)
        #expect(loss.isFinite && loss > 0)
    }

    /// The student's loss is the distillation term (GDFQ's weight 1/classes on the T^2-scaled
    /// KL) plus `studentCEWeight` times the cross-entropy on the generator's labels.
    @Test(arguments: [Float(0), 1, 2.5])
    func theStudentsCrossEntropyWeightScalesThatTermAlone(_ weight: Float) throws {
        let trainer = try smallRun(.gdfq, studentCEWeight: weight)
        let (images, labels, _) = try trainer.generatorStep(0, learningRate: 1e-3)
        trainer.calibrateStudent(from: 1)
        try trainer.student.setConvBNMode(trainer.config.convBNMode)
        let logits = withoutGradients { trainer.student(Variable(images)) }
        let target = withoutGradients { trainer.teacher(Variable(images)) }
        let kd = Double(distillationLoss(student: logits, teacher: target, temperature: 20).value.item) / 10
        let ce = Double(crossEntropy(logits, labels: labels).value.item)
        let loss = try trainer.studentStep(images: images, labels: labels, learningRate: 1e-3)
        #expect(kd > 0 && ce > 0)
        #expect(abs(loss - (kd + Double(weight) * ce)) <= 1e-5 * (kd + ce), "loss \(loss), KD \(kd), CE \(ce)")
    }

    /// A CIFAR-shaped teacher gets 3x32x32 images from its generator, and a size the generator
    /// cannot make is refused.
    @Test func theGeneratorMakesImagesOfTheTeachersSize() throws {
        var config = DataFreeConfig()
        config.batchSize = 4
        config.imageSize = 32
        let teacher = ResNet(ResNetConfig(inChannels: 3), seed: 2)
        let student = try quantize(teacher, config: QuantizationConfig(weightBits: 4, activationBits: 4),
                                   inputRange: normalisedPixelRange(mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26]))
        let trainer = try DataFreeTrainer(config: config, teacher: teacher, student: student)
        let (images, _, terms) = try trainer.generatorStep(0, learningRate: 1e-3)
        #expect(images.shape == [4, 3, 32, 32])
        #expect(terms.values.allSatisfy { $0.isFinite })
        config.imageSize = 30
        #expect(throws: RunError.self) { _ = try DataFreeTrainer(config: config, teacher: teacher, student: student) }
    }

    @Test func oddBatchesCannotFormPairs() throws {
        #expect(throws: RunError.self) { _ = try smallRun(.acq, batch: 7) }
        do { _ = try smallRun(.acq, batch: 7) } catch { #expect("\(error)".contains("pairs"), "\(error)") }
    }
}
