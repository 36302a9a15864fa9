import Autodiff
import Checkpoint
import Foundation
import NN
import Quantization
import Testing
import TensorCore

// The MSE range options (`RangeMethod.mse`): the weight observer's per-channel clipping, the
// activation observer's range over its calibration histogram, the configuration that carries
// them, and students built with them. The integer export of such students is checked with the
// other configurations in IntegerModelTests and TuneStudentTests.

/// Summed squared error of `x` fake-quantized by `params` (per channel of `params.axis`).
private func squaredError(_ x: Tensor, _ params: QuantizationParameters) -> Double {
    zip(params.fakeQuantize(x).scalars, x.scalars).reduce(0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
}

/// Summed squared error of every value of `batches` quantized at the frozen range of `observer`.
private func squaredError(_ batches: [Tensor], _ observer: any Observer) -> Double {
    let params = observer.calculateQuantizationParameters()
    return batches.reduce(0) { $0 + squaredError($1, params) }
}

/// One channel of 4095 values spread evenly over [-1, 1] and one outlier at 4.
private let outlierChannel: [Float] = (0..<4095).map { Float($0) / 2047 - 1 } + [4]

@Suite struct RangeSearchTests {
    @Test(arguments: [2, 3, 4])
    func weightRangeClipsALoneOutlierAndLowersTheError(_ bits: Int) {
        let x = Tensor(shape: [1, 4096], scalars: outlierChannel)
        let mse = MSEObserver(bits: bits, scheme: .perChannelAffine(axis: 0)), minMax = MinMaxObserver(bits: bits, scheme: .perChannelAffine(axis: 0))
        mse.observe(x)
        minMax.observe(x)
        let (clipped, full) = (squaredError(x, mse.calculateQuantizationParameters()), squaredError(x, minMax.calculateQuantizationParameters()))
        let ratios = mse.chosenRatios[0]
        #expect(ratios.upper < 0.6, "\(bits) bits: the outlier was kept (upper ratio \(ratios.upper))")
        // At 4 bits only the outlier's side is clipped: the bulk's lower end stays. (At 2 and 3
        // bits clipping the uniform bulk itself pays, on either side: measured 0.33 and 0.77.)
        #expect(bits < 4 || ratios.lower >= 0.9, "\(bits) bits: the lower end was clipped too (ratio \(ratios.lower))")
        // 4095 values in [-1, 1] on a grid of 5/15 (4 bits) cost far more than one clipped outlier.
        #expect(clipped < full / 2, "\(bits) bits: MSE range error \(clipped), min/max \(full)")
    }

    @Test func weightRangeHardlyClipsTheOutlierAt8BitsWhereItsLevelsAreFineAnyway() {
        let x = Tensor(shape: [1, 4096], scalars: outlierChannel)
        let mse = MSEObserver(bits: 8, scheme: .perChannelAffine(axis: 0)), minMax = MinMaxObserver(bits: 8, scheme: .perChannelAffine(axis: 0))
        mse.observe(x)
        minMax.observe(x)
        let ratios = mse.chosenRatios[0]
        #expect(ratios.upper >= 0.95 && ratios.lower == 1, "\(ratios)")
        #expect(squaredError(x, mse.calculateQuantizationParameters()) <= squaredError(x, minMax.calculateQuantizationParameters()))
    }

    @Test func weightRangeIsNeverWorseThanMinMaxOnRandomTensors() {
        for seed in UInt64(0)..<6 {
            for (bits, scheme) in [(2, QScheme.perChannelAffine(axis: 0)), (3, .perChannelAffine(axis: 0)), (4, .perChannelSymmetric(axis: 0)),
                                   (4, .perTensorAffine), (8, .perChannelAffine(axis: 0))] {
                // Heavy-tailed (a normal cubed) and shifted, so channels differ in shape and sign.
                let x = Tensor.randomNormal([8, 4, 3, 3], seed: seed).map { $0 * $0 * $0 + 0.1 }
                let mse = MSEObserver(bits: bits, scheme: scheme), minMax = MinMaxObserver(bits: bits, scheme: scheme)
                mse.observe(x)
                minMax.observe(x)
                let (a, b) = (mse.calculateQuantizationParameters(), minMax.calculateQuantizationParameters())
                let channels = scheme.axis == nil ? 1 : 8, size = x.count / channels
                for c in 0..<channels {
                    let channel = Tensor(shape: [1, size], scalars: Array(x.scalars[(c * size)..<((c + 1) * size)]))
                    let one = { (p: QuantizationParameters) in
                        QuantizationParameters(bits: bits, scale: [p.scale[channels == 1 ? 0 : c]],
                                               zeroPoint: [p.zeroPoint[channels == 1 ? 0 : c]], axis: 0)
                    }
                    let (clipped, full) = (squaredError(channel, one(a)), squaredError(channel, one(b)))
                    #expect(clipped <= full, "seed \(seed), \(bits) bits \(scheme), channel \(c): \(clipped) > \(full)")
                }
            }
        }
    }

    @Test func weightChannelsAreSearchedIndependently() {
        let base = Tensor.randomNormal([4, 2, 3, 3], seed: 3)
        var spiked = base
        spiked[flat: 18 + 5] = 40   // channel 1 gets an outlier
        let (a, b) = (MSEObserver(bits: 3, scheme: .perChannelAffine(axis: 0)), MSEObserver(bits: 3, scheme: .perChannelAffine(axis: 0)))
        a.observe(base)
        b.observe(spiked)
        let (pa, pb) = (a.calculateQuantizationParameters(), b.calculateQuantizationParameters())
        for c in [0, 2, 3] {
            #expect(pa.scale[c] == pb.scale[c] && pa.zeroPoint[c] == pb.zeroPoint[c], "channel \(c) moved with channel 1's outlier")
        }
        #expect(pb.scale[1] != pa.scale[1])
        // Each channel's parameters are those of the channel observed alone.
        for c in 0..<4 {
            let alone = MSEObserver(bits: 3, scheme: .perTensorAffine)
            alone.observe(Tensor(shape: [18], scalars: Array(spiked.scalars[(c * 18)..<((c + 1) * 18)])))
            let p = alone.calculateQuantizationParameters()
            #expect(p.scale[0] == pb.scale[c] && p.zeroPoint[0] == pb.zeroPoint[c], "channel \(c)")
        }
    }

    @Test func weightRangeFollowsTheCurrentWeightsAndKeepsTheStraightThroughGradient() {
        let q = FakeQuantize.weight(bits: 4, scheme: .perChannelAffine(axis: 0), range: .mse)
        #expect(q.observer is MSEObserver && q.ownState.isEmpty)
        let w1 = Tensor(shape: [1, 4096], scalars: outlierChannel)
        _ = q(Variable(w1))
        let first = q.quantizationParameters
        let w2 = w1.map { $0 * 2 }
        let x = Variable(w2, requiresGrad: true)
        let y = q(x)
        #expect(q.quantizationParameters.scale[0] == 2 * first.scale[0], "the range follows the weights")
        let g = Tensor.randomNormal([1, 4096], seed: 4)
        y.backward(seed: g)
        #expect(x.grad?.scalars == g.scalars, "straight-through: the gradient passes unchanged")
    }

    @Test(arguments: [3, 4])
    func activationRangeIsTheHistogramsLeastErrorRangeAfterCalibration(_ bits: Int) throws {
        // Post-ReLU-like batches: many exact zeros, an exponential bulk, one rare outlier.
        let batches: [Tensor] = (0..<5).map { i in
            var t = Tensor.randomNormal([4, 8, 6, 6], seed: UInt64(10 + i)).map { Swift.max(0, $0) * 1.5 }
            if i == 2 { t[flat: 7] = 30 }
            return t
        }
        let q = FakeQuantize.activation(bits: bits, scheme: .perTensorAffine, momentum: 0.9, range: .mse)
        let reference = MovingAverageMinMaxObserver(bits: bits, scheme: .perTensorAffine, momentum: 0.9)
        q.isObserverEnabled = true
        for b in batches {
            _ = q(Variable(b))
            reference.observe(b)
            // While calibrating, the range is the EMA of batch ranges, as with min/max.
            #expect(q.quantizationParameters == reference.calculateQuantizationParameters())
        }
        let observer = q.observer as! HistogramMSEObserver
        #expect(observer.chosenRatios == nil)
        q.isObserverEnabled = false
        observer.finishCalibration()
        let ratios = try #require(observer.chosenRatios)
        #expect(ratios.upper < 1)
        let (chosen, ema) = (squaredError(batches, observer), squaredError(batches, reference))
        #expect(chosen < ema, "\(bits) bits: MSE range error \(chosen), EMA min/max \(ema)")
        // Against every candidate measured exactly: within 2 % of the best (the histogram takes
        // each bin's values at its centre).
        let exact = RangeSearch.activationRatios.map { r -> Double in
            let p = QuantizationParameters(bits: bits, minimum: [0], maximum: [r * 30], symmetric: false, axis: nil)
            return batches.reduce(0) { $0 + squaredError($1, p) }
        }
        #expect(chosen <= exact.min()! * 1.02, "\(bits) bits: \(chosen) against the best exact \(exact.min()!)")
        // Frozen: neither more data nor a second end of calibration moves it.
        let frozen = q.quantizationParameters
        _ = q(Variable(batches[2].map { $0 * 3 }))
        observer.finishCalibration()
        #expect(q.quantizationParameters == frozen)
        #expect(q.ownState.map(\.0) == ["min_val", "max_val"])
    }

    @Test func activationRangeHardlyDependsOnHowTheValuesAreBatched() throws {
        // The same values in one batch, or in batches whose range grows (bins merged as it does),
        // give nearly the same range: merging moves no count to another bin, only the bin edges
        // differ (the batched histogram's limit is its first batch's maximum times a power of 2).
        let values = Tensor.randomNormal([6000], seed: 21).map { abs($0) }
        let sorted = Tensor(shape: [6000], scalars: values.scalars.sorted())
        let once = HistogramMSEObserver(bits: 4, scheme: .perTensorAffine)
        let grown = HistogramMSEObserver(bits: 4, scheme: .perTensorAffine)
        // Ascending batches: the first holds only the smallest values, so the range grows twice.
        once.observe(Tensor(shape: [6000], scalars: sorted.scalars.reversed()))
        for part in 0..<3 {
            grown.observe(Tensor(shape: [2000], scalars: Array(sorted.scalars[(part * 2000)..<((part + 1) * 2000)])))
        }
        for o in [once, grown] { o.finishCalibration() }
        let (a, b) = (try #require(once.chosenRatios), try #require(grown.chosenRatios))
        #expect(abs(a.upper - b.upper) <= 0.01, "\(a) against \(b)")
    }

    @Test func calibrationEndsWithTheMSERangesAndTheStudentSavesAndReloadsThem() throws {
        let c = config(4, 4) { $0.weightRange = .mse; $0.activationRange = .mse }
        #expect(c.name == "W4A4-mse-weights-mse-activations")
        let teacher = realisticTeacher()
        let student = try calibratedStudent(teacher, c, batches: 3)
        let minMax = try calibratedStudent(teacher, config(4, 4), batches: 3)
        var clipped = 0
        for ((name, q), (_, r)) in zip(student.activationQuantizers, minMax.activationQuantizers) {
            let o = try #require(q.observer as? HistogramMSEObserver, "\(name)")
            #expect(o.chosenRatios != nil, "\(name) ended its calibration")
            if q.quantizationParameters.scale[0] < r.quantizationParameters.scale[0] { clipped += 1 }
        }
        #expect(clipped >= student.activationQuantizers.count / 2, "only \(clipped) activation ranges narrower than min/max at 4 bits")
        #expect(student.stem.conv.weightFakeQuant.observer is MSEObserver && student.fc.weightFakeQuant.observer is MSEObserver)
        #expect(student.input.observer is MovingAverageMinMaxObserver, "the input's fixed range stays min/max")

        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("student.safetensors")
        let meta = ModelMetadata(role: "student", architecture: ResNetConfig(), imageShape: [1, 28, 28], mean: [0.2860], std: [0.3530])
        try StudentFile.save(student, metadata: meta, to: url)
        let (loaded, _) = try StudentFile.load(url)
        #expect(loaded.quantization == c)
        let images = fashionTest.batch(indices: Array(0..<16)).images
        #expect(logits(loaded, images).scalars == logits(student, images).scalars)
    }

    @Test func configurationsWithoutRangeMethodsDecodeAsMinMax() throws {
        // A student file's configuration as written before the range options existed.
        let old = #"{"activationBits":4,"activationScheme":{"perTensorAffine":{}},"firstAndLastAt8Bits":false,"#
            + #""observerMomentum":0.9,"quantizeInput":false,"weightBits":4,"weightScheme":{"perChannelAffine":{"axis":0}}}"#
        let decoded = try JSONDecoder().decode(QuantizationConfig.self, from: Data(old.utf8))
        #expect(decoded == config(4, 4))
        let mse = config(3, 3) { $0.weightRange = .mse; $0.activationRange = .mse }
        #expect(try JSONDecoder().decode(QuantizationConfig.self, from: JSONEncoder().encode(mse)) == mse)
        let bad = old.replacingOccurrences(of: "\"weightBits\"", with: "\"weightRange\":\"kl\",\"weightBits\"")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(QuantizationConfig.self, from: Data(bad.utf8)) }
        #expect(RangeMethod(rawValue: "minmax") == .minMax && RangeMethod(rawValue: "mse") == .mse && RangeMethod(rawValue: "MSE") == nil)
    }
}
