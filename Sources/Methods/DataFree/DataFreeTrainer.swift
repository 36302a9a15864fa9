import Autodiff
import Data
import Distributed
import Foundation
import NN
import Quantization
import TensorCore

/// Settings of a data-free quantization run (GDFQ or ACQ).
public struct DataFreeConfig: Codable, Sendable {
    public var method: DataFreeMethod = .acq
    public var acq = ACQObjective()
    public var gdfq = GDFQObjective()
    /// Global synthetic batch: pairs (2k, 2k+1) share label and position, so it must be even.
    public var batchSize = 64
    /// Generator-only steps before the student trains.
    public var warmupSteps = 50
    /// Steps over which the student's activation ranges follow generator images, then freeze.
    public var calibrationSteps = 20
    /// Student fine-tuning steps (each also trains the generator).
    public var steps = 400
    public var generatorLearningRate: Float = 1e-3
    public var studentLearningRate: Float = 1e-3
    public var temperature: Float = 20
    /// Weight of the student's cross-entropy on the generator's labels (GDFQ: 1); the
    /// distillation term keeps GDFQ's weight.
    public var studentCEWeight: Float = 1
    /// Half-width of the square the position condition is drawn from.
    public var positionRange: Float = 0.25
    public var seed: UInt64 = 0
    /// Height and width of the generated images: the teacher's (28 for Fashion-MNIST, 32 for
    /// CIFAR-10); a multiple of 4.
    public var imageSize = 28
    /// How the student's frozen-BN conv blocks run: tune (BN folded into the conv at every
    /// forward, so the fake-quantized folded weight is the integer model's) or eval.
    public var convBNMode: Mode = .tune
    public init() {}

    public var objective: any GeneratorObjective { method == .acq ? acq : gdfq }
}

/// The random draws of global sample i at step t: label and position per pair, noise per
/// sample, all from counter-based streams, so any split of the batch sees the same ones.
public struct SyntheticBatch {
    public let labels: [Int]
    public let noise: Tensor        // [n, latent]
    public let positions: Tensor    // [n, 2]

    /// Samples `range` of the global batch at `step`.
    public init(step: Int, range: Range<Int>, latent: Int, classes: Int, positionRange rho: Float, seed: UInt64) {
        var labels: [Int] = [], noise = Tensor(uninitializedShape: [range.count, latent])
        var positions = Tensor(uninitializedShape: [range.count, 2])
        for (row, i) in range.enumerated() {
            var pair = RandomStream(seed: seed, purpose: 0x5041_4952, step: step, index: i / 2)  // "PAIR"
            labels.append(pair.int(below: classes))
            positions[flat: 2 * row] = (2 * pair.uniform() - 1) * rho
            positions[flat: 2 * row + 1] = (2 * pair.uniform() - 1) * rho
            var z = RandomStream(seed: seed, purpose: 0x4E4F_4953, step: step, index: i)  // "NOIS"
            for j in 0..<latent { noise[flat: row * latent + j] = z.normal() }
        }
        (self.labels, self.noise, self.positions) = (labels, noise, positions)
    }
}

/// One data-free quantization run: a generator trained against the frozen teacher by the
/// method's objective, and a quantized student trained on the generator's images by
/// distillation (CE + KL at temperature T, GDFQ's weight 1/classes on the T^2-scaled KL).
///
/// Data-parallel over `communicator`: each rank generates its share of the pairs of every global
/// batch; the generator's batch norms, the teacher's batch statistics (BNS, the consistency pass)
/// and the paired loss's means are those of the global batch; gradients are summed over ranks;
/// the same updates keep every replica equal. The result does not depend on the number of ranks.
public final class DataFreeTrainer {
    public let config: DataFreeConfig
    public let teacher: ResNet
    public let generator: Generator
    public let student: QuantizedResNet
    public let communicator: any Communicator
    let generatorArena: ParameterArena
    let studentArena: ParameterArena
    let generatorParallel: DataParallel
    let studentParallel: DataParallel
    let reducer: BatchStatisticsReducer?
    let adam: Adam
    let sgd: SGD
    let objective: any GeneratorObjective
    /// Where the generator's biases before batch norm sit in its flat gradient buffer.
    let exactlyZeroGradients: [Range<Int>]

    public init(config: DataFreeConfig, teacher: ResNet, student: QuantizedResNet,
                communicator: any Communicator = SingleProcessCommunicator(),
                options: DataParallel.Options = DataParallel.Options()) throws {
        guard config.batchSize >= 2 && config.batchSize % 2 == 0 else {
            throw RunError("--batch-size \(config.batchSize) cannot form pairs: the synthetic batch must be even (pairs share label and position)")
        }
        guard config.batchSize / 2 >= communicator.size else {
            throw RunError("--batch-size \(config.batchSize) has \(config.batchSize / 2) pairs, fewer than the \(communicator.size) ranks: every rank needs a pair")
        }
        guard config.positionRange > 0 && config.positionRange <= 1 else {
            throw RunError("--position-range \(config.positionRange) is outside (0, 1]: positions live in [-1, 1]")
        }
        guard config.imageSize >= 4 && config.imageSize % 4 == 0 else {
            throw RunError("image size \(config.imageSize) is not a multiple of 4: the generator upsamples twice from a quarter of it")
        }
        guard !teacher.batchNorms.isEmpty else {
            throw RunError("the teacher has no batch norm layers: the BNS loss needs their running statistics")
        }
        self.config = config
        self.teacher = teacher
        self.student = student
        self.communicator = communicator
        objective = config.objective
        var g = GeneratorConfig()
        g.imageSize = config.imageSize
        g.classes = teacher.config.classes
        g.channels = teacher.config.inChannels
        g.condition = objective.condition
        generator = Generator(g, seed: config.seed)
        teacher.setMode(.eval)
        teacher.setRequiresGrad(false)
        reducer = communicator.size > 1 ? SynchronizedBatchStatistics(communicator: communicator) : nil
        // The generator's batch norms normalise over the global batch from the first step on.
        generator.setReducer(reducer)
        generatorArena = ParameterArena(model: generator)
        generatorParallel = try DataParallel(model: generator, arena: generatorArena, communicator: communicator, options: options)
        adam = Adam(generatorArena, beta1: 0.5, beta2: 0.999)
        let zeroed = Set(generator.biasesBeforeBatchNorm.map(ObjectIdentifier.init))
        exactlyZeroGradients = generatorArena.entries.filter { zeroed.contains(ObjectIdentifier($0.parameter)) }.map(\.range)
        try student.setConvBNMode(config.convBNMode)
        studentArena = ParameterArena(model: student)
        studentParallel = try DataParallel(model: student, arena: studentArena, communicator: communicator, options: options)
        sgd = SGD(studentArena, momentum: 0.9, nesterov: true, weightDecay: 1e-4)
    }

    /// This rank's samples of the global batch: a contiguous run of whole pairs.
    public var localRange: Range<Int> {
        let pairs = EpochSampler.shard(of: 0..<(config.batchSize / 2), rank: communicator.rank, size: communicator.size)
        return (2 * pairs.lowerBound)..<(2 * pairs.upperBound)
    }

    /// Learning-rate factor at fine-tuning step s: x0.1 at 25, 50 and 75 % of the run.
    func decay(_ s: Int) -> Float {
        MultiStepSchedule(base: 1, milestones: [1, 2, 3].map { config.steps * $0 / 4 }).learningRate(atStep: s)
    }

    func batch(_ step: Int, _ range: Range<Int>) -> SyntheticBatch {
        SyntheticBatch(step: step, range: range, latent: generator.config.latent, classes: generator.config.classes,
                       positionRange: config.positionRange, seed: config.seed)
    }

    /// One generator step at global step `step`; returns this rank's detached images and labels
    /// and each loss term's value over the global batch.
    public func generatorStep(_ step: Int, learningRate: Float) throws -> (images: Tensor, labels: [Int], terms: [String: Double]) {
        // Each sample computed on its own and every batch sum in sample order: the generator
        // takes the same steps on any number of ranks (docs/acq.md, "Rank counts").
        try Compute.withSampleIndependentKernels { try sampleIndependentGeneratorStep(step, learningRate: learningRate) }
    }

    private func sampleIndependentGeneratorStep(_ step: Int, learningRate: Float) throws -> (images: Tensor, labels: [Int], terms: [String: Double]) {
        let range = localRange
        let batch = self.batch(step, range)
        generatorArena.zeroGradients()
        let positions = objective.condition.takesPositions ? batch.positions : nil
        let x = generator.generate(z: Variable(batch.noise), labels: batch.labels, positions: positions)
        let eval = teacherPass(teacher, x, captureBatchNormInputs: true)
        let train = objective.needsBatchStatisticsPass ? teacherPass(teacher, x, batchStatistics: true, reducer: reducer) : nil
        let terms = objective.terms(GeneratorLossContext(
            teacher: teacher, labels: batch.labels, noise: batch.noise, positions: positions, eval: eval, train: train,
            fraction: Float(range.count) / Float(config.batchSize), reducer: reducer))
        var total = terms[0].loss * terms[0].weight
        for t in terms.dropFirst() { total = total + t.loss * t.weight }
        // Every term is already this rank's share of the global loss: backward with seed 1,
        // gradients added up in sample order, so that the run does not depend on the number
        // of ranks (docs/acq.md, "Rank counts").
        try generatorParallel.backwardInSampleOrder(total, samples: range, globalCount: config.batchSize)
        zeroExactlyZeroGradients()
        adam.step(learningRate: learningRate)
        // Per-sample terms add up over ranks; global ones are the same everywhere.
        var values = try generatorParallel.sum(terms.map { Double($0.loss.value.item) * ($0.isGlobal ? 1 / Double(communicator.size) : 1) })
        values.append(zip(values, terms).reduce(0) { $0 + $1.0 * Double($1.1.weight) })
        let names = terms.map(\.name) + ["generator"]
        return (x.value, batch.labels, Dictionary(uniqueKeysWithValues: zip(names, values)))
    }

    /// Sets the gradients of the generator's biases before batch norm to their exact value, 0,
    /// so that they stay at their initial values whatever the number of ranks.
    func zeroExactlyZeroGradients() {
        generatorArena.gradients.withSharedMutableBufferPointer { g in
            for range in exactlyZeroGradients {
                (g.baseAddress! + range.lowerBound).update(repeating: 0, count: range.count)
            }
        }
    }

    /// One student step on this rank's detached synthetic images; returns the global loss.
    public func studentStep(images: Tensor, labels: [Int], learningRate: Float) throws -> Double {
        // Evaluation puts the student in eval mode; training runs in the configured one.
        try student.setConvBNMode(config.convBNMode)
        studentArena.zeroGradients()
        let target = withoutGradients { teacher(Variable(images)) }
        let logits = student(Variable(images))
        var loss = (1 / Float(teacher.config.classes)) * distillationLoss(student: logits, teacher: target, temperature: config.temperature)
        if config.studentCEWeight != 0 { loss = loss + config.studentCEWeight * crossEntropy(logits, labels: labels) }
        try studentParallel.backward(loss, localCount: labels.count, globalCount: config.batchSize)
        sgd.step(learningRate: learningRate)
        return try studentParallel.sum([Double(loss.value.item) * Double(labels.count) / Double(config.batchSize)])[0]
    }

    /// Observes activation ranges on `calibrationSteps` generator batches, then freezes them.
    /// Every rank generates the whole global batch (no synchronised statistics needed), so every
    /// rank observes the same ranges.
    public func calibrateStudent(from step: Int) {
        generator.setReducer(nil)
        defer { generator.setReducer(reducer) }
        student.calibrate(batches: config.calibrationSteps) { i in
            let b = batch(step + i, 0..<config.batchSize)
            let positions = objective.condition.takesPositions ? b.positions : nil
            return withoutGradients { generator.generate(z: Variable(b.noise), labels: b.labels, positions: positions) }.value
        }
    }
}
