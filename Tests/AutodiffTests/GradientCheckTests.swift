import Autodiff
import Testing
import TensorCore
import TestSupport

// Finite-difference checks of every op's backward on small shapes.
func random(_ shape: [Int], _ seed: UInt64, scale: Float = 1) -> Tensor {
    Tensor.randomNormal(shape, std: scale, seed: seed)
}

func expectGradientsMatch(_ name: String, _ inputs: [Tensor], step: Float = 1e-2,
                          _ f: @escaping ([Variable]) -> Variable) {
    let worst = gradientCheck(inputs, step: step, f)
    for (i, w) in worst.enumerated() {
        #expect(w <= 1, "\(name): gradient of input \(i) off by \(w)x the tolerance")
    }
}

@Suite struct GradientCheckTests {
    @Test(arguments: [(1, 1, 3), (2, 1, 3), (1, 0, 1), (2, 2, 5)])
    func conv2d(_ stride: Int, _ padding: Int, _ kernel: Int) {
        expectGradientsMatch("conv2d s\(stride) p\(padding) k\(kernel)",
                             [random([2, 3, 7, 6], 1), random([4, 3, kernel, kernel], 2, scale: 0.3), random([4], 3)]) {
            Autodiff.conv2d($0[0], weight: $0[1], bias: $0[2], stride: stride, padding: padding)
        }
    }

    @Test func batchNormTrainingAndInference() {
        expectGradientsMatch("bn train", [random([4, 3, 3, 3], 4), random([3], 5), random([3], 6)], step: 5e-3) {
            batchNormTraining($0[0], gamma: $0[1], beta: $0[2], eps: 1e-5).0
        }
        let rm = random([3], 7), rv = random([3], 8).map { abs($0) + 0.5 }
        expectGradientsMatch("bn eval", [random([2, 3, 4, 4], 9), random([3], 10), random([3], 11)]) {
            batchNormInference($0[0], gamma: $0[1], beta: $0[2], runningMean: rm, runningVar: rv, eps: 1e-5)
        }
    }

    /// The fused ops (batch norm + ReLU, addition + ReLU) by finite differences, and equal, value
    /// and gradient, to the separate ops on a tensor big enough to be split over two threads.
    @Test func fusedReLUOps() {
        // Inputs of the ReLU kept away from its kink: batch norm's output is spread by gamma.
        expectGradientsMatch("bn + relu", [random([4, 3, 3, 3], 40), random([3], 41).map { $0 + 2 }, random([3], 42)], step: 5e-3) {
            batchNormTraining($0[0], gamma: $0[1], beta: $0[2], eps: 1e-5, relu: true).0
        }
        let a = random([2, 3, 4, 4], 43).map { $0 >= 0 ? $0 + 0.05 : $0 - 0.05 }
        expectGradientsMatch("add + relu", [a, a.map { _ in 0 }]) { addReLU($0[0], $0[1]) }

        let x = random([16, 16, 28, 28], 44), r = random([16, 16, 28, 28], 45), gy = random([16, 16, 28, 28], 46)
        let gamma = random([16], 47), beta = random([16], 48)
        func run(_ fused: Bool) -> [Tensor] {
            Compute.withThreads(2) {
                let vars = [x, r, gamma, beta].map { Variable($0, requiresGrad: true) }
                let y: Variable
                if fused {
                    y = addReLU(batchNormTraining(vars[0], gamma: vars[2], beta: vars[3], eps: 1e-5, relu: true).0, vars[1])
                } else {
                    y = relu(relu(batchNormTraining(vars[0], gamma: vars[2], beta: vars[3], eps: 1e-5).0) + vars[1])
                }
                y.backward(seed: gy)
                return [y.value] + vars.map { $0.grad! }
            }
        }
        let (fused, separate) = (run(true), run(false))
        for (i, name) in ["output", "grad x", "grad residual", "grad gamma", "grad beta"].enumerated() {
            #expect(fused[i].scalars == separate[i].scalars, "\(name): up to \((fused[i] - separate[i]).maxAbs())")
        }
    }

    @Test func linearLayer() {
        expectGradientsMatch("linear", [random([5, 4], 12), random([3, 4], 13), random([3], 14)]) {
            Autodiff.linear($0[0], weight: $0[1], bias: $0[2])
        }
    }

    @Test func activationsAndSpatial() {
        // Keep inputs away from relu's kink so central differences are valid.
        let x = random([2, 3, 4, 4], 15).map { $0 >= 0 ? $0 + 0.05 : $0 - 0.05 }
        expectGradientsMatch("relu", [x]) { relu($0[0]) }
        expectGradientsMatch("leaky_relu", [x]) { leakyRelu($0[0], slope: 0.2) }
        expectGradientsMatch("tanh", [x]) { tanh($0[0]) }
        expectGradientsMatch("global average pool", [x]) { globalAveragePool($0[0]) }
        expectGradientsMatch("upsample", [x]) { upsampleNearest2x($0[0]) }
    }

    @Test func arithmeticAndShapes() {
        let a = random([2, 3, 2, 2], 16), b = random([2, 3, 2, 2], 17), c = random([2, 1, 2, 2], 18)
        expectGradientsMatch("add", [a, b]) { $0[0] + $0[1] }
        expectGradientsMatch("sub", [a, b]) { $0[0] - $0[1] }
        expectGradientsMatch("mul", [a, b]) { $0[0] * $0[1] }
        expectGradientsMatch("scale", [a]) { $0[0] * 2.5 }
        expectGradientsMatch("reshape/flatten", [a]) { flatten($0[0]) * $0[0].value.count.asFloat }
        expectGradientsMatch("concat", [a, c]) { concatenate(channels: [$0[0], $0[1]]) }
        expectGradientsMatch("sum", [a]) { sum($0[0]) }
        expectGradientsMatch("mean", [a]) { mean($0[0]) }
        expectGradientsMatch("embedding", [random([4, 3], 19)]) { embedding($0[0], indices: [2, 0, 2, 3]) }
    }

    @Test func losses() {
        let labels = [1, 0, 3, 2, 3]
        expectGradientsMatch("cross-entropy", [random([5, 4], 20)]) { crossEntropy($0[0], labels: labels) }
        expectGradientsMatch("distillation", [random([5, 4], 21), random([5, 4], 22)], step: 5e-3) {
            distillationLoss(student: $0[0], teacher: $0[1], temperature: 3)
        }
        expectGradientsMatch("mse", [random([3, 4], 23), random([3, 4], 24)]) { mse($0[0], $0[1]) }
    }

    @Test func attentionAndStatistics() {
        let f = random([2, 3, 4, 4], 27)
        expectGradientsMatch("attention map", [f]) { attentionMap($0[0]) }
        let a = random([2, 4, 4], 28).map { Swift.abs($0) + 0.2 }
        expectGradientsMatch("normalise per sample", [a]) { normalizedPerSample($0[0]) }
        expectGradientsMatch("centroid", [a]) { weightedCentroid($0[0]) }
        expectGradientsMatch("channel moments", [random([3, 2, 3, 3], 29)], step: 5e-3) { channelMoments($0[0]) }
        let away = random([2, 5], 30).map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
        expectGradientsMatch("abs", [away]) { Autodiff.abs($0[0]) }
        expectGradientsMatch("reciprocal", [a], step: 1e-3) { reciprocal($0[0]) }
        expectGradientsMatch("add scalar", [away]) { $0[0] + 0.5 }
        expectGradientsMatch("select rows", [random([4, 3], 31)]) { selectRows($0[0], [3, 0, 3]) }
    }

    /// A loss on an intermediate tensor and a gradient into the input: the tape handles both.
    @Test func gradientsReachInputsAndIntermediateLosses() {
        expectGradientsMatch("two-loss graph", [random([2, 2, 5, 5], 25), random([3, 2, 3, 3], 26, scale: 0.3)]) { v in
            let h = relu(Autodiff.conv2d(v[0], weight: v[1], padding: 1))
            let pooled = flatten(globalAveragePool(h))
            return sum(h * h) * 0.01 + mean(pooled)
        }
    }
}

extension Int { var asFloat: Float { Float(self) } }
