import Testing
import TensorCore

// The BLAS GEMM against its plain reference loop, for every transpose combination.
@Suite struct KernelTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func sgemmMatchesReference(_ ta: Bool, _ tb: Bool) {
        let (m, n, k) = (5, 7, 3)
        let a = Tensor.randomNormal(ta ? [k, m] : [m, k], seed: 1)
        let b = Tensor.randomNormal(tb ? [n, k] : [k, n], seed: 2)
        let fast = a.matmul(b, transposeSelf: ta, transposeOther: tb)
        let slow = sgemmReference(transA: ta, transB: tb, m: m, n: n, k: k, a: a.scalars, b: b.scalars)
        #expect(fast.closeness(to: Tensor(shape: [m, n], scalars: slow), rtol: 1e-5, atol: 1e-6) <= 1)
    }

    @Test func copyOnWriteKeepsValuesApart() {
        let a = Tensor(shape: [3], scalars: [1, 2, 3])
        var b = a
        b[flat: 0] = 9
        #expect(a.scalars == [1, 2, 3])
        #expect(b.scalars == [9, 2, 3])
    }

    @Test func parallelConvolutionEqualsSingleThreaded() {
        let x = Tensor.randomNormal([6, 3, 9, 9], seed: 3), w = Tensor.randomNormal([4, 3, 3, 3], seed: 4)
        let gy = Tensor.randomNormal([6, 4, 5, 5], seed: 5)
        let (y1, g1) = Compute.withThreads(1) {
            (conv2dForward(x, weight: w, bias: nil, stride: 2, padding: 1),
             conv2dBackward(x, weight: w, gradOutput: gy, stride: 2, padding: 1, needInput: true, needWeight: true, needBias: true))
        }
        let (y3, g3) = Compute.withThreads(3) {
            (conv2dForward(x, weight: w, bias: nil, stride: 2, padding: 1),
             conv2dBackward(x, weight: w, gradOutput: gy, stride: 2, padding: 1, needInput: true, needWeight: true, needBias: true))
        }
        // Each image's output and input gradient is computed by one thread whatever the split.
        #expect(y1.scalars == y3.scalars, "forward differs by up to \((y1 - y3).maxAbs())")
        #expect(g1.input!.scalars == g3.input!.scalars, "input gradient differs by up to \((g1.input! - g3.input!).maxAbs())")
        #expect(g1.weight!.closeness(to: g3.weight!, rtol: 1e-5, atol: 1e-6) <= 1)
    }
}

@Suite struct ConvolutionKernelTests {
    // Odd sizes, strides and paddings where the valid-column runs of im2col are uneven.
    @Test(arguments: [(3, 1, 1, 7, 6), (3, 2, 1, 8, 8), (1, 2, 0, 7, 7), (5, 2, 2, 10, 6), (3, 3, 2, 9, 11), (5, 1, 0, 5, 5)])
    func im2colConvolutionMatchesReferenceLoops(_ k: Int, _ s: Int, _ p: Int, _ h: Int, _ w: Int) {
        let x = Tensor.randomNormal([3, 2, h, w], seed: 6), wt = Tensor.randomNormal([4, 2, k, k], seed: 7)
        let b = Tensor.randomNormal([4], seed: 8)
        let fast = conv2dForward(x, weight: wt, bias: b, stride: s, padding: p)
        let slow = conv2dReference(x, weight: wt, bias: b, stride: s, padding: p)
        #expect(fast.closeness(to: slow, rtol: 1e-4, atol: 1e-5) <= 1)
    }
}

@Suite struct AVX512KernelTests {
    // Shapes that cover every edge: channel counts not a multiple of 8, patch counts not a
    // multiple of 32, output strips that cross from one image into the next, stride 2 and 1x1.
    @Test(arguments: [(3, 5, 1, 1, 7, 6), (16, 16, 1, 1, 28, 28), (16, 32, 2, 1, 14, 14), (16, 32, 2, 0, 14, 14),
                      (64, 64, 1, 1, 7, 7), (1, 16, 1, 1, 28, 28), (4, 6, 2, 2, 10, 6)])
    func avx512ConvolutionMatchesReference(_ c: Int, _ o: Int, _ s: Int, _ p: Int, _ h: Int, _ w: Int) throws {
        try #require(ConvolutionKernels.processorHasAVX512, "this processor has no AVX-512; the BLAS path is tested elsewhere")
        let k = p == 0 ? 1 : (p == 2 ? 5 : 3)
        let x = Tensor.randomNormal([3, c, h, w], seed: 9), wt = Tensor.randomNormal([o, c, k, k], seed: 10)
        let b = Tensor.randomNormal([o], seed: 11)
        let reference = conv2dReference(x, weight: wt, bias: b, stride: s, padding: p)
        let gy = Tensor.randomNormal(reference.shape, seed: 12)
        let blasGrad = Compute.withConvolutionKernels(.blas) {
            conv2dBackward(x, weight: wt, gradOutput: gy, stride: s, padding: p, needInput: true, needWeight: true, needBias: false)
        }
        let (fast, fastGrad) = Compute.withConvolutionKernels(.avx512) {
            (conv2dForward(x, weight: wt, bias: b, stride: s, padding: p),
             conv2dBackward(x, weight: wt, gradOutput: gy, stride: s, padding: p, needInput: true, needWeight: true, needBias: false))
        }
        #expect(fast.closeness(to: reference, rtol: 1e-4, atol: 1e-4) <= 1)
        #expect(fastGrad.weight!.closeness(to: blasGrad.weight!, rtol: 1e-4, atol: 1e-4) <= 1)
        #expect(fastGrad.input!.closeness(to: blasGrad.input!, rtol: 1e-4, atol: 1e-4) <= 1)
    }
}
