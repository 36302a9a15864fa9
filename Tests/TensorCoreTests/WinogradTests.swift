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
