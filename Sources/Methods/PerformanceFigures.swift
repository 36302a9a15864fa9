import Foundation
import NN
import TensorCore

/// Floating-point work of the ResNet family, to turn images per second into GFLOP/s.
public enum FLOPCount {
    /// Multiply-adds of one image's forward pass, counted as 2 FLOPs each: every convolution
    /// (stem, the two 3x3 convolutions of each block, the 1x1 projection shortcuts) and the
    /// classifier. Batch norm, ReLU, pooling and the residual additions are not counted (under
    /// 1 % of the total).
    public static func resnetForward(_ config: ResNetConfig, imageSize: Int) -> Double {
        var flops = 0.0
        func conv(_ cin: Int, _ cout: Int, kernel: Int, size: Int) { flops += 2 * Double(cin * cout * kernel * kernel * size * size) }
        conv(config.inChannels, 16, kernel: 3, size: imageSize)
        var (channels, size) = (16, imageSize)
        for stage in 0..<3 {
            let out = 16 << stage
            for block in 0..<config.blocksPerStage {
                let projects = block == 0 && stage > 0
                if projects { size /= 2 }
                conv(block == 0 ? channels : out, out, kernel: 3, size: size)
                conv(out, out, kernel: 3, size: size)
                if projects { conv(channels, out, kernel: 1, size: size) }
            }
            channels = out
        }
        return flops + 2 * Double(64 * config.classes)
    }

    /// A training step: forward, then backward's two products per layer (input gradient and
    /// weight gradient), each as much work as the forward: 3x, the usual count.
    public static func resnetTrainingStep(_ config: ResNetConfig, imageSize: Int) -> Double {
        3 * resnetForward(config, imageSize: imageSize)
    }
}

/// OpenBLAS SGEMM's speed on this machine with `threads` threads, the practical ceiling of
/// GEMM-shaped work: each thread multiplies its share of rows of [n, n] x [n, n] (OpenBLAS
/// itself is kept single-threaded, as everywhere in acq-dist). Returns GFLOP/s per repeat.
public func measureSGEMMCeiling(threads: Int, size n: Int = 1024, repeats: Int = 7) -> [Double] {
    let a = Tensor.randomNormal([n, n], seed: 1), b = Tensor.randomNormal([n, n], seed: 2)
    var c = Tensor.zeros([n, n])
    let rows = (n + threads - 1) / threads
    func product() {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    let (ap, bp, cp) = (pa.baseAddress!, pb.baseAddress!, pc.baseAddress!)
                    Compute.withThreads(threads) {
                        Compute.parallelFor(threads) { t in
                            let start = t * rows, m = min(rows, n - start)
                            guard m > 0 else { return }
                            sgemm(transA: false, transB: false, m: m, n: n, k: n, a: ap + start * n, lda: n,
                                  b: bp, ldb: n, c: cp + start * n, ldc: n)
                        }
                    }
                }
            }
        }
    }
    product()
    return (0..<repeats).map { _ in
        let t0 = DispatchTime.now().uptimeNanoseconds
        product()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return 2 * Double(n * n * n) / seconds / 1e9
    }
}
