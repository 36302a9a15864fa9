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

    /// Work items run on the pool's threads, where task-local settings are not inherited:
    /// `parallelItems` sets the caller's kernels and sample independence again, one kernel thread.
    @Test func parallelItemsKeepTheCallersKernelSettings() {
        for kernels in [ConvolutionKernels.blas, .avx512] {
            for independent in [false, true] {
                var seen = [String](repeating: "", count: 9)
                seen.withUnsafeMutableBufferPointer { out in
                    let out = out
                    let run = {
                        Compute.withConvolutionKernels(kernels) {
                            Compute.withThreads(3) {
                                Compute.parallelItems(9) { i in
                                    out[i] = "\(Compute.convolutionKernels) \(Compute.sampleIndependent) \(Compute.threads)"
                                }
                            }
                        }
                    }
                    if independent { Compute.withSampleIndependentKernels(run) } else { run() }
                }
                #expect(seen == [String](repeating: "\(kernels) \(independent) 1", count: 9))
            }
        }
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

// The convolution's epilogue (bias, residual, ReLU applied a few images at a time) against the
// same steps done after a plain convolution, on both kernel families and shapes where the batch
// does not divide into the epilogue's groups (16 x 28 x 28 outputs: 5 images per group).
@Suite struct PreparedConvolutionWeightsTests {
    // Prepared weights (Winograd's transform computed once) give the same bits as the weights
    // transformed in every call; shapes with and without the Winograd path, both kernel families.
    @Test(arguments: [ConvolutionKernels.blas, .avx512], [(16, 16, 1, 1, 28, 28), (32, 32, 1, 1, 7, 7), (16, 32, 2, 1, 28, 28), (1, 16, 1, 1, 28, 28)])
    func preparedWeightsMatchPlainWeights(_ kernels: ConvolutionKernels, _ shape: (Int, Int, Int, Int, Int, Int)) throws {
        if kernels == .avx512 {
            try #require(ConvolutionKernels.processorHasAVX512, "this processor has no AVX-512; the BLAS path is tested alone")
        }
        let (c, o, s, p, h, w) = shape
        let x = Tensor.randomNormal([5, c, h, w], seed: 41), wt = Tensor.randomNormal([o, c, 3, 3], seed: 42)
        let epilogue = ConvEpilogue(bias: Tensor.randomNormal([o], seed: 43), relu: true)
        try Compute.withConvolutionKernels(kernels) {
            try Compute.withThreads(2) {
                let plain = conv2dForward(x, weight: wt, stride: s, padding: p, epilogue: epilogue)
                let prepared = conv2dForward(x, weights: PreparedConvolutionWeights(wt, stride: s, padding: p), epilogue: epilogue)
                try #require(prepared.shape == plain.shape)
                #expect(prepared.scalars == plain.scalars, "\(kernels) \(shape): up to \((prepared - plain).maxAbs())")
            }
        }
    }
}

@Suite struct ConvolutionEpilogueTests {
    @Test(arguments: [ConvolutionKernels.blas, .avx512], [(16, 16, 1, 1, 28, 28), (1, 16, 1, 1, 28, 28), (16, 32, 2, 1, 28, 28),
                                                        (16, 32, 2, 0, 28, 28), (64, 64, 1, 1, 7, 7),
                                                        (32, 32, 1, 1, 14, 14), (8, 9, 1, 1, 9, 11)])
    func epilogueMatchesSeparatePasses(_ kernels: ConvolutionKernels, _ shape: (Int, Int, Int, Int, Int, Int)) throws {
        if kernels == .avx512 {
            try #require(ConvolutionKernels.processorHasAVX512, "this processor has no AVX-512; the BLAS path is tested alone")
        }
        let (c, o, s, p, h, w) = shape
        let k = p == 0 ? 1 : 3
        let x = Tensor.randomNormal([13, c, h, w], seed: 21), wt = Tensor.randomNormal([o, c, k, k], seed: 22)
        let bias = Tensor.randomNormal([o], seed: 23)
        // The BLAS path's GEMM sizes follow the split over threads, so each thread count is
        // compared with its own plain convolution.
        for threads in [1, 2] {
            try Compute.withConvolutionKernels(kernels) {
                try Compute.withThreads(threads) {
                    let what = "\(kernels) \(shape) threads \(threads)"
                    let plain = conv2dForward(x, weight: wt, bias: nil, stride: s, padding: p)
                    let residual = Tensor.randomNormal(plain.shape, seed: 24)
                    var withBias = plain
                    withBias.addChannelBias(bias)
                    let expected = (withBias + residual).map { $0 > 0 ? $0 : 0 }
                    let fused = conv2dForward(x, weight: wt, stride: s, padding: p,
                                              epilogue: ConvEpilogue(bias: bias, residual: residual, relu: true))
                    try #require(fused.shape == expected.shape)
                    // Same kernel, same sums: the epilogue adds in the order of the separate passes.
                    #expect(fused.scalars == expected.scalars, "\(what): up to \((fused - expected).maxAbs())")
                    let biasOnly = conv2dForward(x, weight: wt, stride: s, padding: p, epilogue: ConvEpilogue(bias: bias))
                    #expect(biasOnly.scalars == withBias.scalars, "\(what) bias only: up to \((biasOnly - withBias).maxAbs())")
                    let reluOnly = conv2dForward(x, weight: wt, stride: s, padding: p, epilogue: ConvEpilogue(relu: true))
                    let clipped = plain.map { $0 > 0 ? $0 : 0 }
                    #expect(reluOnly.scalars == clipped.scalars, "\(what) ReLU only: up to \((reluOnly - clipped).maxAbs())")
                    #expect(plain.scalars.contains { $0 < 0 }, "the ReLU must have something to clip")
                }
            }
        }
    }
}
