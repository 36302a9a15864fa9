import Autodiff
import Quantization
import Testing
import TensorCore

@Suite struct ObserverTests {
    @Test func movingAverageStartsAtTheFirstBatchThenAveragesWithMomentum() {
        let o = MovingAverageMinMaxObserver(bits: 4, scheme: .perTensorAffine, momentum: 0.9)
        #expect(!o.hasRange)
        o.observe(Tensor(shape: [3], scalars: [-1, 0, 2]))
        #expect(o.minimum.value.item == -1 && o.maximum.value.item == 2)
        o.observe(Tensor(shape: [2], scalars: [-3, 12]))
        #expect(abs(o.minimum.value.item - (0.9 * -1 + 0.1 * -3)) < 1e-6)
        #expect(abs(o.maximum.value.item - (0.9 * 2 + 0.1 * 12)) < 1e-6)
    }

    @Test func frozenActivationQuantizerKeepsItsRange() {
        let q = FakeQuantize.activation(bits: 8, scheme: .perTensorAffine, momentum: 0.9)
        q.isObserverEnabled = true
        _ = q(Variable(Tensor(shape: [2], scalars: [0, 1])))
        q.isObserverEnabled = false
        _ = q(Variable(Tensor(shape: [2], scalars: [0, 50])))
        let o = q.observer as! MovingAverageMinMaxObserver
        #expect(o.minimum.value.item == 0 && o.maximum.value.item == 1)
        #expect(q.ownState.map(\.0) == ["min_val", "max_val"])
    }

    @Test func weightObserverFollowsTheCurrentWeightsPerChannel() {
        let q = FakeQuantize.weight(bits: 8, scheme: .perChannelAffine(axis: 0))
        _ = q(Variable(Tensor(shape: [2, 2], scalars: [-1, 1, 0, 4])))
        #expect(q.quantizationParameters.scale == [2 / 255, 4 / 255])
        _ = q(Variable(Tensor(shape: [2, 2], scalars: [0, 2, -2, 0])))
        #expect(q.quantizationParameters.scale == [2 / 255, 2 / 255])
        #expect(q.ownState.isEmpty)
    }
}
