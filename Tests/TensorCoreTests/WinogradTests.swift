import Testing
import TensorCore
import CPUKernelsAVX512
import Foundation

// Winograd F(2x2, 3x3) against the plain reference loops, and a timing against the direct kernel
// (serialized, so that the timing does not share the processor with the reference loops).
@Suite(.serialized) struct WinogradTests {
    /// y = the Winograd kernel applied to x [N, C, H, W] and w [O, C, 3, 3].
    static func winograd(_ x: Tensor, _ w: Tensor) -> Tensor {
        let (n, c, h, wd, o) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0])
        let s = ConvShape(inChannels: c, height: h, width: wd, outChannels: o, kernel: 3, stride: 1, padding: 1)
        // NaN-filled, so that any output the kernel fails to write shows.
        var y = Tensor(shape: [n, o, h, wd], repeating: .nan)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    convolutionForwardWinograd3x3(s, x: xp.baseAddress!, w: wp.baseAddress!, y: yp.baseAddress!, images: n)
                }
            }
        }
        return y
    }

    // Odd sizes (tiles past the edge), channel counts not a multiple of 8, batches whose blocks
    // of tiles cross rows of tiles and images, one input channel, rows of 1 to 18 tiles, blocks
    // of many small images.
    @Test(arguments: [(2, 16, 16, 28, 28), (2, 32, 32, 14, 14), (2, 64, 64, 7, 7), (3, 129, 128, 14, 14),
                      (2, 3, 5, 9, 11), (1, 1, 16, 28, 28), (2, 16, 8, 32, 32), (2, 8, 8, 33, 35),
                      (9, 8, 8, 8, 8), (5, 24, 16, 14, 14), (17, 9, 10, 7, 12), (3, 8, 9, 1, 1), (4, 8, 8, 2, 29)])
    func winogradMatchesReference(_ n: Int, _ c: Int, _ o: Int, _ h: Int, _ w: Int) {
        guard ConvolutionKernels.processorHasAVX512 else { return }
        let x = Tensor.randomNormal([n, c, h, w], seed: 21), wt = Tensor.randomNormal([o, c, 3, 3], seed: 22)
        let reference = conv2dReference(x, weight: wt, bias: nil, stride: 1, padding: 1)
        let fast = Self.winograd(x, wt)
        #expect(fast.shape == reference.shape)
        let (f, r) = (fast.scalars, reference.scalars)
        var maxDiff: Float = 0, maxRef: Float = 0, maxFast: Float = 0
        for i in 0..<r.count {
            // NaN (an unwritten output) must fail: compare with !(<=) below.
            let d = abs(f[i] - r[i])
            maxDiff = d.isNaN ? .infinity : max(maxDiff, d)
            maxRef = max(maxRef, abs(r[i]))
            maxFast = max(maxFast, abs(f[i]))
        }
        #expect(maxRef > 0.1, "reference is all (near) zero")
        #expect(maxFast > 0.1, "result is all (near) zero")
        #expect(maxDiff <= 1e-4 * max(1, maxRef), "max |difference| \(maxDiff), max |reference| \(maxRef)")
    }
}

// The Winograd weight gradient against a plain loop over positions.
@Suite struct WinogradWeightGradientTests {
    /// gw[o, c, ki, kj] = sum over images and positions of gy[n, o, y, x] * x[n, c, y + ki - 1, x + kj - 1].
    static func reference(_ x: Tensor, _ gy: Tensor, outChannels o: Int) -> [Float] {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (xs, gs) = (x.scalars, gy.scalars)
        var gw = [Float](repeating: 0, count: o * c * 9)
        for oi in 0..<o {
            for ci in 0..<c {
                for ki in 0..<3 {
                    for kj in 0..<3 {
                        var sum: Double = 0
                        for b in 0..<n {
                            for yy in 0..<h {
                                let iy = yy + ki - 1
                                guard iy >= 0 && iy < h else { continue }
                                for xx in 0..<w {
                                    let ix = xx + kj - 1
                                    guard ix >= 0 && ix < w else { continue }
                                    sum += Double(gs[((b * o + oi) * h + yy) * w + xx]) * Double(xs[((b * c + ci) * h + iy) * w + ix])
                                }
                            }
                        }
                        gw[((oi * c + ci) * 3 + ki) * 3 + kj] = Float(sum)
                    }
                }
            }
        }
        return gw
    }

    // Channel counts below and past whole vectors, odd sizes (tiles past the edge), one pixel,
    // groups of tiles that end inside an image (5 x 49 tiles), the ResNet-20 shapes.
    @Test(arguments: [(2, 16, 16, 28, 28), (2, 32, 32, 14, 14), (3, 64, 64, 7, 7), (2, 3, 5, 9, 11),
                      (1, 20, 24, 5, 6), (2, 8, 9, 1, 1), (5, 16, 16, 14, 14), (2, 17, 33, 8, 13)])
    func weightGradientMatchesReference(_ n: Int, _ c: Int, _ o: Int, _ h: Int, _ w: Int) {
        guard ConvolutionKernels.processorHasAVX512 else { return }
        let x = Tensor.randomNormal([n, c, h, w], seed: 31), gy = Tensor.randomNormal([n, o, h, w], seed: 32)
        let s = ConvShape(inChannels: c, height: h, width: w, outChannels: o, kernel: 3, stride: 1, padding: 1)
        // The kernel adds to gw: start from ones and take them off again.
        var fast = [Float](repeating: 1, count: o * c * 9)
        x.withUnsafeBufferPointer { xp in
            gy.withUnsafeBufferPointer { gp in
                fast.withUnsafeMutableBufferPointer { gw in
                    convolutionWeightGradientWinograd3x3(s, x: xp.baseAddress!, gy: gp.baseAddress!, gw: gw.baseAddress!, images: n)
                }
            }
        }
        let expected = Self.reference(x, gy, outChannels: o)
        var maxDiff: Float = 0, maxRef: Float = 0
        for i in 0..<expected.count {
            let d = abs((fast[i] - 1) - expected[i])
            maxDiff = d.isNaN ? .infinity : max(maxDiff, d)
            maxRef = max(maxRef, abs(expected[i]))
        }
        #expect(maxRef > 0.1, "reference is all (near) zero")
        #expect(maxDiff <= 1e-4 * max(1, maxRef) + 2e-6 * Float(n * h * w), "max |difference| \(maxDiff), max |reference| \(maxRef)")
    }
}
