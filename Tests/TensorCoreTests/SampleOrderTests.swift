import Testing
import TensorCore

// What makes a data-parallel run independent of the number of ranks: sums in one tree order
// over the global batch, and per-sample kernels whose results do not depend on which other
// samples share the call.
@Suite struct SampleOrderTests {
    /// Contiguous splits of 0..<count into `parts` runs (as data-parallel ranks hold them).
    static func split(_ count: Int, _ parts: Int) -> [Range<Int>] {
        (0..<parts).map { (count * $0 / parts)..<(count * ($0 + 1) / parts) }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 8])
    func nodeSumsOfAnySplitCombineToTheSameBits(_ ranks: Int) {
        let tree = SampleTree(count: 64)
        let width = 7
        // Values of many magnitudes, so that a different order would round differently.
        let values = Tensor.randomNormal([64, width], seed: 11).scalars.enumerated().map { $1 * Float(1 << ($0 % 17)) }
        let whole = tree.sum(values, width: width)
        var known: [Range<Int>: [Float]] = [:]
        for part in Self.split(64, ranks) {
            var rows = Array(values[(part.lowerBound * width)..<(part.upperBound * width)])
            for (node, sum) in zip(tree.nodes(covering: part), tree.nodeSums(&rows, local: part, width: width)) { known[node] = sum }
        }
        let combined = tree.combine(tree.root, known: { known[$0] }, add: { a, b in zip(a, b).map { $0 + $1 } })
        #expect(combined == whole)
        // The sequential sum differs somewhere: the test would notice an order change.
        let sequential = (0..<width).map { j in (0..<64).reduce(Float(0)) { $0 + values[$1 * width + j] } }
        #expect(sequential != whole)
    }

    @Test func nodesCoverARangeExactlyWithTreeNodes() {
        let tree = SampleTree(count: 64)
        #expect(tree.nodes(covering: 0..<64) == [0..<64])
        #expect(tree.nodes(covering: 32..<64) == [32..<64])
        #expect(tree.nodes(covering: 0..<22) == [0..<16, 16..<20, 20..<22])
        #expect(tree.nodes(covering: 22..<44) == [22..<24, 24..<32, 32..<40, 40..<44])
        #expect(SampleTree(count: 6).nodes(covering: 3..<6) == [3..<4, 4..<6])
    }

    /// Each kernel on a whole batch and on its halves and quarters: every sample's output the
    /// same bits.
    @Test(arguments: ConvolutionKernels.allCases.filter { $0 == .blas || ConvolutionKernels.processorHasAVX512 })
    func perSampleKernelsDoNotDependOnTheSplit(_ kernels: ConvolutionKernels) {
        Compute.withConvolutionKernels(kernels) {
            Compute.withSampleIndependentKernels {
                // The generator's and the teacher's layer shapes (Fashion-MNIST).
                for (input, weight, stride, padding) in [([16, 129, 14, 14], [128, 129, 3, 3], 1, 1),
                                                         ([16, 64, 28, 28], [1, 64, 3, 3], 1, 1),
                                                         ([16, 16, 28, 28], [32, 16, 3, 3], 2, 1),
                                                         ([16, 32, 14, 14], [64, 32, 1, 1], 2, 0)] {
                    let x = Tensor.randomNormal(input, seed: 1), w = Tensor.randomNormal(weight, seed: 2)
                    let y = conv2dForward(x, weight: w, bias: nil, stride: stride, padding: padding)
                    let gy = Tensor.randomNormal(y.shape, seed: 3)
                    let gx = conv2dBackward(x, weight: w, gradOutput: gy, stride: stride, padding: padding,
                                            needInput: true, needWeight: false, needBias: false).input!
                    for parts in [2, 4] {
                        for r in Self.split(16, parts) {
                            let forwardSame = conv2dForward(x.rows(r), weight: w, bias: nil, stride: stride, padding: padding).scalars == y.rows(r).scalars
                            #expect(forwardSame, "conv forward \(input) \(weight) samples \(r)")
                            let part = conv2dBackward(x.rows(r), weight: w, gradOutput: gy.rows(r), stride: stride, padding: padding,
                                                      needInput: true, needWeight: false, needBias: false).input!
                            let backwardSame = part.scalars == gx.rows(r).scalars
                            #expect(backwardSame, "conv input gradient \(input) \(weight) samples \(r)")
                        }
                    }
                }
            }
        }
    }

    @Test func matrixProductRowsDoNotDependOnTheSplit() {
        Compute.withSampleIndependentKernels {
            // The generator's first linear layer and the teacher's classifier, forward and back.
            for (n, inF, outF) in [(64, 100, 6272), (64, 64, 10)] {
                let x = Tensor.randomNormal([n, inF], seed: 4), w = Tensor.randomNormal([outF, inF], seed: 5)
                let y = x.matmul(w, transposeOther: true)
                let gy = Tensor.randomNormal([n, outF], seed: 6)
                let gx = gy.matmul(w)
                for parts in [2, 4] {
                    for r in Self.split(n, parts) {
                        let forwardSame = x.rows(r).matmul(w, transposeOther: true).scalars == y.rows(r).scalars
                        let backwardSame = gy.rows(r).matmul(w).scalars == gx.rows(r).scalars
                        #expect(forwardSame, "linear forward \(inF)->\(outF) rows \(r)")
                        #expect(backwardSame, "linear input gradient \(inF)->\(outF) rows \(r)")
                    }
                }
            }
        }
    }
}
