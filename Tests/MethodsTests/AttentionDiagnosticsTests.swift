import Autodiff
import Checkpoint
import Data
import Foundation
import Logging
import Methods
import NN
import Quantization
import Testing
import TensorCore

@Suite struct AttentionDiagnosticsTests {
    /// A frozen ResNet-20 teacher with freshly initialised running statistics (0 and 1), which
    /// no batch of images matches: its eval/train gap is far from 0.
    func teacher() -> ResNet {
        let t = ResNet(ResNetConfig(), seed: 2)
        t.setMode(.eval)
        t.setRequiresGrad(false)
        return t
    }

    func images(_ n: Int, seed: UInt64) -> Tensor { Tensor.randomNormal([n, 1, 28, 28], seed: seed) }

    @Test func spreadIsTheMeanOverClassesOfTheRMSDistanceFromTheClassMeanCentre() throws {
        // Class 0: two equal centres (spread 0). Class 1: (1, 0), (-1, 0), (0, 0) around their mean
        // (0, 0): sqrt((1 + 1 + 0) / 3). Class 2: one centre, left out. Class 3: (0.1, 0.2) and
        // (0.3, -0.2) around (0.2, 0): each at sqrt(0.01 + 0.04).
        let centres = Tensor(shape: [8, 2], scalars: [0.5, 0.5, 0.5, 0.5, 1, 0, -1, 0, 0, 0, 0.7, -0.7, 0.1, 0.2, 0.3, -0.2])
        let spread = try #require(centreSpread(centres: centres, labels: [0, 0, 1, 1, 1, 2, 3, 3]))
        let expected = (0 + (2.0 / 3).squareRoot() + 0.05.squareRoot()) / 3
        #expect(abs(spread - expected) < 1e-6, "\(spread) vs \(expected)")
        #expect(centreSpread(centres: Tensor(shape: [3, 2], scalars: [0.2, -0.1, 0.2, -0.1, 0.2, -0.1]), labels: [4, 4, 4]) == 0)
        #expect(centreSpread(centres: Tensor(shape: [2, 2], scalars: [0, 0, 1, 1]), labels: [0, 1]) == nil)
    }

    /// Centres equal to the positions: error 0, slope 1; centres that ignore them: slope 0 and
    /// error the positions' mean square plus the centres' offset; half-way: slope 0.5.
    @Test func conditionFitMeasuresHowCentresFollowPositions() {
        let p = Tensor(shape: [4, 2], scalars: [0.2, -0.2, -0.2, 0.2, 0.1, 0.1, -0.1, -0.1])
        let exact = ConditionFit(centres: p, positions: p)
        #expect(exact.error == 0 && abs(exact.slope - 1) < 1e-12)
        let ignoring = ConditionFit(centres: Tensor(shape: [4, 2], scalars: [Float](repeating: 0.3, count: 8)), positions: p)
        let byHand = ([(0.2, -0.2), (-0.2, 0.2), (0.1, 0.1), (-0.1, -0.1)] as [(Double, Double)])
            .map { (0.3 - $0.0) * (0.3 - $0.0) + (0.3 - $0.1) * (0.3 - $0.1) }.reduce(0, +) / 4
        #expect(abs(ignoring.error - byHand) < 1e-6 && abs(ignoring.slope) < 1e-12)
        let half = ConditionFit(centres: Tensor(shape: [4, 2], scalars: p.scalars.map { 0.5 * $0 + 0.05 }), positions: p)
        #expect(abs(half.slope - 0.5) < 1e-6, "slope \(half.slope)")
    }

    /// The centres are the ones ACQ's attention-centre matching uses: matching them gives a zero
    /// loss. Copies of one image per class share a centre (spread 0); distinct images give the
    /// RMS distance computed here by hand from those centres.
    @Test func centresAreTheACQCentresAndTheirSpreadFollowsTheDefinition() throws {
        let t = teacher()
        let distinct = images(6, seed: 11)
        let measured = AttentionMeasurement(teacher: t, images: distinct).centres
        let attention = withoutGradients { Attention(features: teacherPass(t, Variable(distinct)).features) }
        #expect(measured.scalars == attention.centre.value.scalars)
        #expect(withoutGradients { attentionCentreLoss(attention, positions: measured) }.value.item == 0)

        let labels = [0, 0, 0, 1, 1, 1]
        let result = try attentionDiagnostics(teacher: t, batches: 1, batchSize: 6) { _ in DiagnosticBatch(images: distinct, labels: labels) }
        var byHand = 0.0
        for members in [0..<3, 3..<6] {
            let xs = members.map { Double(measured[flat: 2 * $0]) }, ys = members.map { Double(measured[flat: 2 * $0 + 1]) }
            let (mx, my) = (xs.reduce(0, +) / 3, ys.reduce(0, +) / 3)
            byHand += (zip(xs, ys).map { ($0 - mx) * ($0 - mx) + ($1 - my) * ($1 - my) }.reduce(0, +) / 3).squareRoot() / 2
        }
        #expect(result.samples == 6)
        #expect(byHand > 1e-3, "distinct random images should have distinct centres")
        #expect(abs(result.centreSpread - byHand) < 1e-6, "\(result.centreSpread) vs \(byHand)")

        // Three copies of image 0 as class 0, three of image 1 as class 1.
        let copies = Tensor.concatenate(channels: [Int](repeating: 0, count: 3).map { _ in distinct.rows(0..<1) }
                                            + [Int](repeating: 0, count: 3).map { _ in distinct.rows(1..<2) })
        let flat = copies.reshaped([6, 1, 28, 28])
        let same = try attentionDiagnostics(teacher: t, batches: 1, batchSize: 6) { _ in DiagnosticBatch(images: flat, labels: labels) }
        #expect(same.centreSpread < 1e-6, "copies of one image must share their centre, spread \(same.centreSpread)")
    }

    /// With running statistics set to this batch's own statistics, eval and train passes
    /// normalise alike and the gap vanishes; with the initial ones it does not.
    @Test func gapVanishesWhenRunningStatisticsAreTheBatchsOwn() {
        let t = teacher()
        let x = images(8, seed: 5)
        let before = AttentionMeasurement(teacher: t, images: x).gap
        #expect(before > 1e-3, "gap \(before) with mismatched running statistics")

        _ = withoutGradients { teacherPass(t, Variable(x), batchStatistics: true) }
        for bn in t.batchNorms {
            let stats = bn.lastBatchStatistics!
            // Biased variance: the one train mode normalises with.
            bn.runningMean.assign(Tensor(shape: [bn.channels], scalars: stats.mean.map { Float($0) }))
            bn.runningVar.assign(Tensor(shape: [bn.channels], scalars: stats.variance.map { Float($0) }))
        }
        let after = AttentionMeasurement(teacher: t, images: x).gap
        #expect(after < 1e-9, "gap \(after) with the batch's own statistics (was \(before))")
        #expect(after >= 0)
    }

    /// The diagnostic is the consistency term the ACQ trainer logs, on the same batch.
    @Test func gapIsTheConsistencyTermOfTheSameBatch() throws {
        var config = DataFreeConfig()
        config.method = .acq
        config.batchSize = 8
        let t = teacher()
        let student = try quantize(t, config: QuantizationConfig(weightBits: 4, activationBits: 4),
                                   inputRange: normalisedPixelRange(mean: [0.286], std: [0.353]))
        let trainer = try DataFreeTrainer(config: config, teacher: t, student: student)
        let (images, labels, terms) = try trainer.generatorStep(0, learningRate: 1e-3)
        let consistency = try #require(terms["cons"])
        let gap = AttentionMeasurement(teacher: t, images: images).gap
        #expect(abs(gap - consistency) <= 1e-6 * consistency, "diagnostic \(gap), trainer's cons term \(consistency)")
        let whole = try attentionDiagnostics(teacher: t, batches: 1, batchSize: 8) { _ in DiagnosticBatch(images: images, labels: labels) }
        #expect(abs(whole.attentionGap - consistency) <= 1e-6 * consistency)
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("acq-dist-diagnostics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A whole (tiny) data-free run: its generator file loads back with the run's condition and
    /// position range, and generates the same images on every load.
    @Test(arguments: PositionCondition.allCases)
    func generatorFilesOfARunLoadBackWithTheirCondition(condition: PositionCondition) throws {
        let noCondition = condition == .none
        var config = DataFreeConfig()
        config.method = .acq
        (config.batchSize, config.warmupSteps, config.calibrationSteps, config.steps) = (4, 0, 1, 1)
        config.positionRange = 0.5
        config.acq.condition = condition
        if noCondition { config.acq.acmWeight = 0 }
        let t = teacher()
        let metadata = ModelMetadata(role: "teacher", architecture: t.config, imageShape: [1, 28, 28], mean: [0.286], std: [0.353])
        let test = Dataset(name: "tiny", pixels: (0..<(4 * 784)).map { UInt8($0 % 251) }, labels: [0, 1, 2, 3],
                           channels: 1, height: 28, width: 28, classes: 10, mean: [0.286], std: [0.353])
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = try RunFolder(name: "acq", explicit: dir.path)
        _ = try runDataFree(config, teacher: t, metadata: metadata, quantization: QuantizationConfig(weightBits: 4, activationBits: 4),
                            test: test, folder: folder, metrics: MetricsLog(url: nil), logger: Logger(label: "test"), command: "test")

        let url = folder.file("generator.safetensors")
        let loaded = try TrainedGenerator(contentsOf: url)
        #expect(loaded.recordsCondition)
        #expect(loaded.generator.config.condition == condition)
        #expect(loaded.positionRange == 0.5)
        let drawn = loaded.batch(2, batchSize: 6, seed: 3)
        let (first, labels) = (drawn.images, drawn.labels)
        #expect(first.shape == [6, 1, 28, 28])
        #expect(labels.allSatisfy { (0..<10).contains($0) } && labels[0] == labels[1])
        #expect((drawn.positions == nil) == noCondition)
        if let p = drawn.positions {
            #expect(p.shape == [6, 2] && p.scalars.allSatisfy { abs($0) <= 0.5 })
            #expect(p[flat: 0] == p[flat: 2] && p[flat: 1] == p[flat: 3], "a pair shares its position")
        }
        #expect(try TrainedGenerator(contentsOf: url).batch(2, batchSize: 6, seed: 3).images.scalars == first.scalars)
        #expect(loaded.batch(3, batchSize: 6, seed: 3).images.scalars != first.scalars)

        let wrongRole = errorText { _ = try TrainedGenerator(contentsOf: folder.file("student.safetensors")) }
        #expect(wrongRole.contains("student.safetensors") && wrongRole.contains("expected a generator file"), "\(wrongRole)")
    }

    /// Files written before runs recorded their condition: the heat map is read off conv1's
    /// input channels, the position range is the default.
    @Test func olderGeneratorFilesTakeTheirConditionFromTheirTensors() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for condition in PositionCondition.allCases {
            var config = GeneratorConfig()
            config.condition = condition
            let url = dir.appendingPathComponent("\(condition.rawValue).safetensors")
            try ModelFile.save(Generator(config, seed: 1),
                               metadata: ModelMetadata(role: "generator", architecture: ResNetConfig(), imageShape: [1, 28, 28],
                                                       mean: [0.286], std: [0.353], notes: ["method": "acq"]),
                               to: url)
            let loaded = try TrainedGenerator(contentsOf: url)
            #expect(loaded.generator.config.condition == condition)
            #expect(!loaded.recordsCondition)
            #expect(loaded.positionRange == DataFreeConfig().positionRange)
        }
    }

    func errorText(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return ""
    }
}
