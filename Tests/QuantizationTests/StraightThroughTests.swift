import Autodiff
import NN
import Quantization
import Testing
import TensorCore
import TestSupport

// The straight-through estimator: rounding has a zero derivative almost everywhere, so these
// check that the gradient passes a quantizer unchanged (GDFQ's STE has no clipping mask), and
// that a quantized layer's gradients are the float layer's evaluated at the quantized weight.
@Suite struct StraightThroughTests {
    @Test(arguments: [2, 4, 8])
    func fakeQuantizePassesTheGradientUnchanged(_ bits: Int) {
        let x = Variable(Tensor.randomNormal([2, 3, 4, 4], seed: 1), requiresGrad: true)
        let q = FakeQuantize.activation(bits: bits, scheme: .perTensorAffine, momentum: 0.9)
        q.isObserverEnabled = true
        let y = q(x)
        #expect(y.value.scalars != x.value.scalars)
        let seed = Tensor.randomNormal(x.shape, seed: 2)
        y.backward(seed: seed)
        #expect(x.grad?.scalars == seed.scalars)
    }

    @Test func valuesOutsideAFrozenRangeStillPassTheGradient() {
        let q = FakeQuantize.activation(bits: 4, scheme: .perTensorAffine, momentum: 0.9)
        (q.observer as! MovingAverageMinMaxObserver).setRange(0, 1)
        let x = Variable(Tensor(shape: [3], scalars: [-5, 0.51, 7]), requiresGrad: true)
        let y = q(x)
        expectClose(y.value, Tensor(shape: [3], scalars: [0, 8.0 / 15, 1]), rtol: 1e-6, atol: 0, "clamped to the range")
        y.backward(seed: Tensor(shape: [3], scalars: [1, 2, 3]))
        #expect(x.grad?.scalars == [1, 2, 3])
    }

    @Test func quantizedConvolutionGradientsAreTheFloatOnesAtTheQuantizedWeight() {
        let conv = Conv2d(3, 5, kernel: 3, padding: 1, bias: true, seed: 3)
        let q = QuantizedConv2d(conv, bits: 3, scheme: .perChannelAffine(axis: 0))
        let x = Tensor.randomNormal([2, 3, 6, 6], seed: 4)
        let seed = Tensor.randomNormal([2, 5, 6, 6], seed: 5)
        let xv = Variable(x, requiresGrad: true)
        q(xv).backward(seed: seed)

        let wq = Variable(q.quantizedWeight.value, requiresGrad: true)
        let b = Variable(conv.bias!.value, requiresGrad: true)
        let xr = Variable(x, requiresGrad: true)
        conv2d(xr, weight: wq, bias: b, padding: 1).backward(seed: seed)
        #expect(wq.value.scalars != conv.weight.value.scalars)
        expectClose(conv.weight.grad!, wq.grad!, rtol: 1e-6, atol: 1e-6, "weight gradient")
        expectClose(conv.bias!.grad!, b.grad!, rtol: 1e-6, atol: 1e-6, "bias gradient")
        expectClose(xv.grad!, xr.grad!, rtol: 1e-6, atol: 1e-6, "input gradient")
    }
}
