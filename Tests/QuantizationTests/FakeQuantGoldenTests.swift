import Autodiff
import Quantization
import Testing
import TensorCore
import TestSupport

// golden/fake_quant (PyTorch, float32): w [8, 4, 3, 3] per output channel and a [2, 8, 5, 5] per
// tensor, fake-quantized at 2, 4 and 8 bits with method.md section 3's formula. The quantizer
// performs the same float32 operations, so the results are expected bit for bit.
@Suite struct FakeQuantGoldenTests {
    @Test(arguments: [2, 4, 8])
    func weightsPerOutputChannelMatchPyTorch(_ bits: Int) throws {
        let g = try Golden.load("fake_quant")
        let quantizer = FakeQuantize.weight(bits: bits, scheme: .perChannelAffine(axis: 0))
        let y = quantizer(Variable(try g.tensor("w")))
        expectClose(y.value, try g.tensor("w_q\(bits)"), rtol: 0, atol: 0, "w_q\(bits)")
    }

    @Test(arguments: [2, 4, 8])
    func activationsPerTensorMatchPyTorch(_ bits: Int) throws {
        let g = try Golden.load("fake_quant")
        let quantizer = FakeQuantize.activation(bits: bits, scheme: .perTensorAffine, momentum: 0.9)
        // One calibrating forward: a plain EMA starts at the first batch's own range.
        quantizer.isObserverEnabled = true
        let y = quantizer(Variable(try g.tensor("a")))
        expectClose(y.value, try g.tensor("a_q\(bits)"), rtol: 0, atol: 0, "a_q\(bits)")
    }

    @Test func parametersFollowTheFormula() {
        // Range [-1, 2] at 2 bits: n = 3, scale = 1, zero point round(1 / 1) = 1.
        let p = QuantizationParameters(bits: 2, minimum: [-1], maximum: [2], symmetric: false, axis: nil)
        #expect(p.scale == [1] && p.zeroPoint == [1] && p.quantMax == 3)
        // Levels -1, 0, 1, 2; 2.6 clamps to 2, -3 to -1; 0.5 and 1.5 round half to even.
        let x = Tensor(shape: [6], scalars: [-3, -0.4, 0.5, 1.5, 2.6, 0.51])
        #expect(p.fakeQuantize(x).scalars == [-1, 0, 0, 2, 2, 1])
        #expect(p.quantize(x) == [0, 1, 1, 3, 3, 2])
        #expect(p.centredLevels(x) == [-1, 0, 0, 2, 2, 1])
    }

    @Test func rangeIsWidenedToContainZeroAndAnAllZeroTensorStaysZero() {
        // [0.5, 2.0] widens to [0, 2]: zero point 0, so 0 is exactly a level.
        let p = QuantizationParameters(bits: 8, minimum: [0.5], maximum: [2], symmetric: false, axis: nil)
        #expect(p.zeroPoint == [0] && p.scale == [2 / 255])
        let zeros = Tensor.zeros([3, 4])
        let z = QuantizationParameters(bits: 4, minimum: [0], maximum: [0], symmetric: false, axis: nil)
        #expect(z.fakeQuantize(zeros).scalars == zeros.scalars)
    }

    @Test func symmetricSchemeUsesLevelsAroundTheMiddle() {
        // 4 bits: levels -7...7 around zero point 8, scale max|x| / 7.
        let p = QuantizationParameters(bits: 4, minimum: [-3.5], maximum: [1], symmetric: true, axis: nil)
        #expect(p.zeroPoint == [8] && p.scale == [0.5])
        let x = Tensor(shape: [4], scalars: [-3.5, -0.74, 0.76, 1])
        #expect(p.fakeQuantize(x).scalars == [-3.5, -0.5, 1, 1])
        #expect(p.quantize(x) == [1, 7, 10, 10])
    }

    @Test func perTensorWeightSchemeSharesOneRange() {
        let w = Tensor(shape: [2, 2], scalars: [-1, 1, 0.1, 0.2])
        let perTensor = FakeQuantize.weight(bits: 2, scheme: .perTensorAffine)(Variable(w)).value
        let perChannel = FakeQuantize.weight(bits: 2, scheme: .perChannelAffine(axis: 0))(Variable(w)).value
        // One range [-1, 1] (scale 2/3, zero point round(1.5) = 2, levels -4/3...2/3): the small row
        // falls to 0, while per channel it keeps its own range [0, 0.2].
        expectClose(perTensor, Tensor(shape: [2, 2], scalars: [-4.0 / 3, 2.0 / 3, 0, 0]), rtol: 1e-6, atol: 1e-7, "per tensor")
        expectClose(perChannel, Tensor(shape: [2, 2], scalars: [-4.0 / 3, 2.0 / 3, 2 * 0.2 / 3, 0.2]), rtol: 1e-6, atol: 1e-7, "per channel")
    }
}
