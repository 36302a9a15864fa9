import Autodiff
import Testing
import TensorCore
import TestSupport

// The folded weight and bias of Tune mode with a quantized student (FoldedParameters.swift):
// finite differences, and conv(x, w', b') equals convBatchNormFolded in value and every gradient
// (gamma's gradient is the sum of what the two ops send it).
@Suite struct FoldedParametersTests {
    let runningMean = random([4], 20), runningVar = random([4], 21).map { abs($0) + 0.5 }

    @Test func foldedWeightFiniteDifferences() {
        let rv = runningVar
        expectGradientsMatch("folded weight", [random([4, 3, 3, 3], 22), random([4], 23)]) {
            foldedConvWeight($0[0], gamma: $0[1], runningVar: rv, eps: 1e-5)
        }
    }

    @Test func foldedBiasFiniteDifferences() {
        let (rm, rv) = (runningMean, runningVar)
        expectGradientsMatch("folded bias", [random([4], 24), random([4], 25), random([4], 26)]) {
            foldedConvBias($0[0], gamma: $0[1], beta: $0[2], runningMean: rm, runningVar: rv, eps: 1e-5)
        }
        expectGradientsMatch("folded bias, conv without bias", [random([4], 25), random([4], 26)]) {
            foldedConvBias(nil, gamma: $0[0], beta: $0[1], runningMean: rm, runningVar: rv, eps: 1e-5)
        }
    }

    @Test func foldThenConvEqualsConvBatchNormFolded() {
        let (rm, rv) = (runningMean, runningVar)
        let inputs = [random([2, 3, 6, 6], 27), random([4, 3, 3, 3], 28, scale: 0.3), random([4], 29),
                      random([4], 30), random([4], 31)]
        let gy = random([2, 4, 6, 6], 32)
        func run(_ f: ([Variable]) -> Variable) -> [Tensor] {
            let vars = inputs.map { Variable($0, requiresGrad: true) }
            let y = f(vars)
            y.backward(seed: gy)
            return [y.value] + vars.map { $0.grad! }
        }
        let composed = run { v in
            conv2d(v[0], weight: foldedConvWeight(v[1], gamma: v[3], runningVar: rv, eps: 1e-5),
                   bias: foldedConvBias(v[2], gamma: v[3], beta: v[4], runningMean: rm, runningVar: rv, eps: 1e-5),
                   stride: 1, padding: 1)
        }
        let fused = run { v in
            convBatchNormFolded(v[0], weight: v[1], bias: v[2], gamma: v[3], beta: v[4], runningMean: rm,
                                runningVar: rv, eps: 1e-5, stride: 1, padding: 1)
        }
        for (i, name) in ["y", "x", "weight", "bias", "gamma", "beta"].enumerated() {
            expectClose(composed[i], fused[i], rtol: 1e-5, atol: 1e-6, name)
        }
        expectGradientsMatch("fold then conv", inputs) { v in
            conv2d(v[0], weight: foldedConvWeight(v[1], gamma: v[3], runningVar: rv, eps: 1e-5),
                   bias: foldedConvBias(v[2], gamma: v[3], beta: v[4], runningMean: rm, runningVar: rv, eps: 1e-5),
                   stride: 1, padding: 1)
        }
    }
}
